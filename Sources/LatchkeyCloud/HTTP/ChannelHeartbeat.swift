import NIOCore
import NIOWebSocket
import Synchronization

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

    let watch: ChannelSilenceWatch
    private var lastHeard = NIODeadline.distantPast
    /// When a ping went out with nothing heard since.
    private var pingedAt: NIODeadline?
    private var context: ChannelHandlerContext?
    private var round: ChannelSilenceWatch.Round?

    init(watch: ChannelSilenceWatch) { self.watch = watch }

    /// Puts the heartbeat between the frame decoder and the channel's handler, on an upgraded WebSocket connection; on
    /// its event loop.
    static func install(on channel: any Channel, watch: ChannelSilenceWatch) throws {
        let pipeline = channel.pipeline.syncOperations
        let decoder = try pipeline.context(handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self)
        try pipeline.addHandler(ChannelHeartbeat(watch: watch), position: .after(decoder.handler))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastHeard = context.eventLoop.now
        self.context = context
        round = watch.round(on: context.eventLoop)
        round?.watch(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        leaveRound()
    }

    func channelInactive(context: ChannelHandlerContext) {
        leaveRound()
        context.fireChannelInactive()
    }

    private func leaveRound() {
        round?.forget(self)
        round = nil
        context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastHeard = context.eventLoop.now
        pingedAt = nil
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

    /// The round's look at this channel, on its event loop.
    fileprivate func check(at now: NIODeadline) {
        guard let context else { return }
        if let pingedAt {
            if now - pingedAt >= watch.answerWithin { context.close(promise: nil) }
        } else if now - lastHeard >= watch.silence {
            pingedAt = now
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
        }
    }
}

/// A node's watch over its device channels' silence: one round per event loop every `tick` looks at each channel, where
/// each channel had a timer of its own. Those timers were about a tenth of what an idle channel cost the node (perf,
/// issue 13): NIO keeps scheduled tasks in a heap, and each channel's timer fired, left the heap and entered it again
/// about once a minute. The price is precision: a silent channel is pinged, and closed, up to one tick late.
final class ChannelSilenceWatch: Sendable {
    let silence: TimeAmount
    let answerWithin: TimeAmount
    let tick: TimeAmount
    /// Each loop is kept with its round, so that a loop's identifier is never reused while the round is here.
    private let rounds = Mutex<[ObjectIdentifier: (loop: any EventLoop, round: NIOLoopBound<Round>)]>([:])

    init(silence: Duration, answerWithin: Duration) {
        self.silence = TimeAmount(silence)
        self.answerWithin = TimeAmount(answerWithin)
        tick = .nanoseconds(max(self.answerWithin.nanoseconds / 3, 1_000_000))
    }

    /// The round of `loop`, made on first use; called on that loop.
    func round(on loop: any EventLoop) -> Round {
        rounds.withLock { rounds in
            if let entry = rounds[ObjectIdentifier(loop)] { return entry.round.value }
            let round = Round(loop: loop, tick: tick)
            rounds[ObjectIdentifier(loop)] = (loop, NIOLoopBound(round, eventLoop: loop))
            return round
        }
    }

    /// The channels of one event loop, looked at every tick while there are any. Used on that loop only.
    final class Round {
        private let loop: any EventLoop
        private let tick: TimeAmount
        private var heartbeats: [ObjectIdentifier: ChannelHeartbeat] = [:]
        private var ticking: RepeatedTask?

        fileprivate init(loop: any EventLoop, tick: TimeAmount) {
            self.loop = loop
            self.tick = tick
        }

        func watch(_ heartbeat: ChannelHeartbeat) {
            heartbeats[ObjectIdentifier(heartbeat)] = heartbeat
            guard ticking == nil else { return }
            let bound = NIOLoopBound(self, eventLoop: loop)
            ticking = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in bound.value.lookAtEach() }
        }

        func forget(_ heartbeat: ChannelHeartbeat) {
            heartbeats[ObjectIdentifier(heartbeat)] = nil
            if heartbeats.isEmpty {
                ticking?.cancel()
                ticking = nil
            }
        }

        private func lookAtEach() {
            let now = loop.now
            // A copy: a channel closed here leaves the round while it is being walked.
            for heartbeat in heartbeats.values { heartbeat.check(at: now) }
        }
    }
}
