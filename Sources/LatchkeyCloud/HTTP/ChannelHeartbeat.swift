import NIOCore
import NIOWebSocket

/// Keeps a device channel alive and notices a device gone silent, on the connection's event loop: it answers the
/// device's pings, pings only a device it has not heard from for `silence`, and closes the channel when nothing is heard
/// within `answerWithin` of that ping (a device hung with its socket open, as a frozen process is).
///
/// Why not the WebSocket library's automatic ping: that pings every channel every interval whatever it heard, from a
/// task per channel sleeping on a timer, and every ping and pong woke the channel's task on another thread. Holding
/// 15,000 idle channels that way cost the node 338 µs of CPU per channel per minute, most of it thread hand-offs and
/// timers (perf, issue 13).
final class ChannelHeartbeat: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let silence: TimeAmount
    let answerWithin: TimeAmount
    private var lastHeard = NIODeadline.distantPast
    /// A ping went out and nothing has been heard since.
    private var pingUnanswered = false
    private var check: Scheduled<Void>?

    init(silence: TimeAmount, answerWithin: TimeAmount) {
        self.silence = silence
        self.answerWithin = answerWithin
    }

    /// Puts the heartbeat between the frame decoder and the channel's handler, on an upgraded WebSocket connection.
    static func install(on channel: any Channel, silence: Duration, answerWithin: Duration) async throws {
        let (silence, answerWithin) = (TimeAmount(silence), TimeAmount(answerWithin))
        try await channel.eventLoop.submit {
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.context(handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self)
            try pipeline.addHandler(ChannelHeartbeat(silence: silence, answerWithin: answerWithin), position: .after(decoder.handler))
        }.get()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastHeard = context.eventLoop.now
        schedule(context, at: lastHeard + silence)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = context.eventLoop.now
        pingUnanswered = false
        switch frame.opcode {
        case .ping where frame.fin && frame.length < 126:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        default:
            // Everything else, malformed control frames included, is the WebSocket handler's to judge.
            context.fireChannelRead(data)
        }
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleTask(deadline: deadline) {
            let (heartbeat, context) = loopBound.value
            heartbeat.due(context)
        }
    }

    private func due(_ context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        if pingUnanswered {
            context.close(promise: nil)
        } else if now - lastHeard < silence {
            schedule(context, at: lastHeard + silence)
        } else {
            pingUnanswered = true
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
            schedule(context, at: now + answerWithin)
        }
    }
}
