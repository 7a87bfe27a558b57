import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// One device's channel, as the tasks that answer it see it: what it says, and the way to write to it. The frames
/// themselves are handled on the connection's event loop (`DeviceChannelFrames`).
struct DeviceConnection: Sendable {
    private let frames: NIOLoopBound<DeviceChannelFrames>
    private let eventLoop: any EventLoop

    init(_ frames: DeviceChannelFrames, on eventLoop: any EventLoop) {
        self.frames = NIOLoopBound(frames, eventLoop: eventLoop)
        self.eventLoop = eventLoop
    }

    /// The device's first message, or nil when it was not text or the connection closed first.
    func firstMessage() async throws -> String? {
        try await eventLoop.flatSubmit { [frames] in frames.value.takeFirstMessage() }.get()
    }

    /// From now on, each text message is answered by `answer`, one at a time, in order; `ended` runs once, after the
    /// last, when the connection has closed. On a connection already closed, `ended` runs at once.
    func serve(answer: @escaping @Sendable (String) async -> Void, ended: @escaping @Sendable () async -> Void) {
        eventLoop.execute { [frames] in frames.value.serve(.init(answer: answer, ended: ended)) }
    }

    func write(_ text: String) async throws {
        try await eventLoop.flatSubmit { [frames] in frames.value.send(text) }.get()
    }

    /// Says why in a close frame; the connection closes when the device answers it, or after a few seconds.
    func close(_ code: WebSocketErrorCode, reason: String) async throws {
        try await eventLoop.flatSubmit { [frames] in frames.value.close(code, reason: reason) }.get()
    }
}

/// A device channel's WebSocket frames, on its connection's event loop: messages put together from their frames, the
/// closing handshake, and the messages handed to a task only while there are some to answer. Pings and pongs are the
/// heartbeat's (`ChannelHeartbeat`), in front.
final class DeviceChannelFrames: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    struct Serving {
        let answer: @Sendable (String) async -> Void
        let ended: @Sendable () async -> Void
    }

    private enum Next {
        case message(String)
        case idle
        case ended
    }

    /// A message's largest size, its frames together (a hello carries a certificate chain).
    static let maxMessageSize = 64 * 1024
    /// Messages waiting to be answered: a device says one thing at a time, and one that floods is closed.
    static let maxWaiting = 32
    /// How long a close frame waits for the device's.
    static let closeTimeout = TimeAmount.seconds(5)

    private let eventLoop: any EventLoop
    private let roster: DeviceConnections
    private let helloTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var hello: EventLoopPromise<String?>?
    /// Until the handshake takes it: once taken, the hello (a certificate chain, some KiB) is not kept with the channel.
    private var firstMessage: EventLoopFuture<String?>?
    private var helloDeadline: Scheduled<Void>?
    private var serving: Serving?
    /// An array, which takes no memory while empty, as it is on an idle channel.
    private var waiting: [String] = []
    /// A task is answering the waiting messages.
    private var answering = false
    private var open = true
    /// The first frames of a message still coming: whether it is text, and its bytes so far.
    private var unfinished: (text: Bool, bytes: ByteBuffer)?
    private var closeSent = false
    private var closeDeadline: Scheduled<Void>?

    init(eventLoop: any EventLoop, helloTimeout: Duration, roster: DeviceConnections) {
        self.eventLoop = eventLoop
        self.roster = roster
        self.helloTimeout = TimeAmount(helloTimeout)
        let hello = eventLoop.makePromise(of: String?.self)
        self.hello = hello
        firstMessage = hello.futureResult
    }

    /// The channel as the tasks that answer it, and the node's roster, see it.
    var connection: DeviceConnection { DeviceConnection(self, on: eventLoop) }

    func takeFirstMessage() -> EventLoopFuture<String?> {
        defer { firstMessage = nil }
        return firstMessage ?? eventLoop.makeSucceededFuture(nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        roster.add(self)
        // A connection that never says hello is not held.
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        helloDeadline = eventLoop.scheduleTask(in: helloTimeout) { _ = bound.value.close(.policyViolation, reason: "no hello") }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ended()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended()
        context.fireChannelInactive()
    }

    /// The server's connections allow half-closure: a device that stops sending has left, whatever it still reads.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // A device's frames are masked, and use no extension.
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            _ = close(.protocolError, reason: "")
            return
        }
        if frame.opcode == .connectionClose {
            closing(on: context, answering: frame)
            return
        }
        guard !closeSent else { return }
        switch frame.opcode {
        case .text, .binary:
            guard unfinished == nil else { return fail(.protocolError) }
            unfinished = (frame.opcode == .text, frame.unmaskedData)
        case .continuation:
            guard var bytes = unfinished?.bytes else { return fail(.protocolError) }
            var more = frame.unmaskedData
            bytes.writeBuffer(&more)
            unfinished?.bytes = bytes
        default:
            // Pings and pongs the heartbeat let through are malformed; other opcodes are reserved.
            return fail(.protocolError)
        }
        guard let (text, bytes) = unfinished, bytes.readableBytes <= Self.maxMessageSize else { return fail(.messageTooLarge) }
        guard frame.fin else { return }
        unfinished = nil
        received(text ? String(buffer: bytes) : nil)
    }

    /// A whole message: the hello, or one to answer. Devices speak text: anything else is not a hello, and is ignored after.
    private func received(_ text: String?) {
        if let hello {
            self.hello = nil
            helloDeadline?.cancel()
            hello.succeed(text)
            return
        }
        guard let text else { return }
        guard waiting.count < Self.maxWaiting else { return fail(.policyViolation) }
        waiting.append(text)
        if serving != nil, !answering { answerWaiting() }
    }

    func serve(_ serving: Serving) {
        self.serving = serving
        if !waiting.isEmpty || !open { answerWaiting() }
    }

    /// A task answers the waiting messages one after another, and ends when there are none.
    private func answerWaiting() {
        guard let serving else { return }
        answering = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        Task { [eventLoop] in
            while true {
                switch try? await eventLoop.submit({ bound.value.next() }).get() {
                case .message(let text): await serving.answer(text)
                case .ended: return await serving.ended()
                case .idle, nil: return
                }
            }
        }
    }

    private func next() -> Next {
        if !waiting.isEmpty { return .message(waiting.removeFirst()) }
        answering = false
        guard !open, serving != nil else { return .idle }
        serving = nil
        return .ended
    }

    /// The connection is gone: whoever waits for the hello hears nil, and the channel's end is told once, after the
    /// messages that were still waiting.
    private func ended() {
        guard open else { return }
        open = false
        roster.remove(self)
        helloDeadline?.cancel()
        closeDeadline?.cancel()
        hello?.succeed(nil)
        hello = nil
        if serving != nil, !answering { answerWaiting() }
    }

    func send(_ text: String) -> EventLoopFuture<Void> {
        guard let context, !closeSent else { return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        return context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: text))))
    }

    func close(_ code: WebSocketErrorCode, reason: String) -> EventLoopFuture<Void> {
        guard let context, !closeSent else { return eventLoop.makeSucceededVoidFuture() }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let bound = NIOLoopBound(context, eventLoop: eventLoop)
        closeDeadline = eventLoop.scheduleTask(in: Self.closeTimeout) { bound.value.close(promise: nil) }
        return context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
    }

    private func fail(_ code: WebSocketErrorCode) {
        _ = close(code, reason: "")
    }

    /// The device's close frame: the answer to ours, or its own, which is answered with its code before closing.
    private func closing(on context: ChannelHandlerContext, answering frame: WebSocketFrame) {
        guard !closeSent else { return context.close(promise: nil) }
        closeSent = true
        var said = frame.unmaskedData
        var answer = context.channel.allocator.buffer(capacity: 2)
        if let code = said.readWebSocketErrorCode() { answer.write(webSocketErrorCode: code) }
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// The device channels this node holds, handshakes included: closed when the service stops, since no task holds them
/// for the server to wait on.
final class DeviceConnections: Service, Sendable {
    private let open = Mutex<[ObjectIdentifier: DeviceConnection]>([:])

    func add(_ frames: DeviceChannelFrames) {
        let connection = frames.connection
        open.withLock { $0[ObjectIdentifier(frames)] = connection }
    }

    func remove(_ frames: DeviceChannelFrames) {
        _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(frames)) }
    }

    var all: [DeviceConnection] { open.withLock { Array($0.values) } }

    func run() async throws {
        try? await gracefulShutdown()
        for connection in all {
            try? await connection.close(.goingAway, reason: "service stopping")
        }
    }
}
