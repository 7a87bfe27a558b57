import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// How long, and how much, one HTTP connection may hold the server before it has said what it wants: a client that
/// connects and stays silent, trickles its headers or its body, or sends 200 KB of headers is dropped, not served.
public struct ConnectionLimits: Sendable {
    /// The first request's head must arrive whole within this time of the connection opening (TLS handshake
    /// included: a phone on a poor network needs a few seconds, a slowloris is cut off).
    public var headerTimeout: TimeAmount = .seconds(20)
    /// A request's body must arrive whole within this time of its head.
    public var readTimeout: TimeAmount = .seconds(30)
    /// A kept-alive connection with nothing in flight is closed after this (a later request's head must come sooner).
    public var idleTimeout: TimeAmount = .seconds(60)
    /// A request head larger than this is answered 431 and its connection closed.
    public var maxHeaderBytes = 16 * 1024
    /// Device channels one source address may hold (a site's devices share its public address behind NAT).
    public var channelsPerAddress = 1_000
    /// Device identities being checked (the hello's chain and signatures) and written down at once; a device beyond
    /// them waits its turn for `handshakePatience`, then is told `rate_limited` and redials after its backoff. A
    /// handshake costs milliseconds of CPU (the chain's signatures, a write): without a bound, 15,000 devices
    /// redialling a restarted node queued past their hello timeout, failed, and came back, and the node never caught
    /// up (measured, issue 13).
    public var concurrentHandshakes = 32
    /// How long a device waits for one of those places before it is told `rate_limited`.
    public var handshakePatience: Duration = .seconds(2)
    /// Connections the kernel queues for the node to accept (capped by `net.core.somaxconn`). A fleet redialling a
    /// restarted node arrives in bursts while the node is busy with handshakes: at Hummingbird's 256, connections beyond
    /// it lose their SYN and the device's kernel sends it again 1, 3, 7, 15, 31 s later (61 listen-queue overflows in one
    /// run of 1,000 devices switched on at 200 a second and restarted; none at 4,096: measured, issue 13).
    public var listenBacklog = 4_096
    /// Live notification streams one account, and one source address, may hold (tabs, phones, a few people behind NAT).
    public var streamsPerAccount = 10
    public var streamsPerAddress = 100

    public init() {}
}

/// Wraps the HTTP (and WebSocket upgrade) channel so that the guards sit in front of it, where the bytes arrive:
/// the upgrade handler waits for a head without any timeout of its own.
struct GuardedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let headGuard = FirstRequestHeadGuard(limits: limits)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(headGuard)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            // Behind the parser: a first head it refuses is answered through the guard, which sits where bytes go out.
            try channel.pipeline.syncOperations.addHandler(FirstRequestParserErrors(headGuard: headGuard), position: .last)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Watches the raw bytes of a connection until its first request head is complete: closes it when the head takes
/// longer than `headerTimeout` (408) or grows past `maxHeaderBytes` (431); then only passes bytes on, and answers
/// for the parser (`FirstRequestParserErrors`) until the first answer has gone out.
final class FirstRequestHeadGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private var received = 0
    /// The last bytes seen, so a head's end split across two reads is still found.
    private var tail: [UInt8] = []
    private var deadline: Scheduled<Void>?
    /// The head is complete (or was refused): from then on bytes only pass through.
    private var done = false
    private var context: ChannelHandlerContext?
    /// Whether any answer has started: after that, a refusal here would cut into it.
    private(set) var answered = false

    init(limits: ConnectionLimits) { self.limits = limits }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        answered = true
        context.write(data, promise: promise)
    }

    /// The parser refused the first head: answer for it, once, and close.
    func refuseForParser(_ status: String) {
        guard let context else { return }
        refuse(context, status: status)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: limits.headerTimeout) {
            let (guardHandler, context) = loopBound.value
            guardHandler.refuse(context, status: "408 Request Timeout")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        let bytes = Array(buffer.readableBytesView)
        let before = received
        received += bytes.count
        let window = tail + bytes
        if let end = Self.headEnd(in: window) {
            // The head's length: what came before this read, and this read up to the blank line.
            if before + (end + 4 - tail.count) > limits.maxHeaderBytes {
                refuse(context, status: "431 Request Header Fields Too Large")
                return
            }
            done = true
            deadline?.cancel()
            context.fireChannelRead(data)
            return
        }
        if received > limits.maxHeaderBytes {
            refuse(context, status: "431 Request Header Fields Too Large")
            return
        }
        tail = Array(window.suffix(3))
        context.fireChannelRead(data)
    }

    private func refuse(_ context: ChannelHandlerContext, status: String) {
        guard !answered else { return }
        done = true
        answered = true
        deadline?.cancel()
        let answer = "HTTP/1.1 \(status)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: answer))).whenComplete { _ in
            // Told as the client's end of input, the pending WebSocket upgrade ends quietly and closes the connection
            // (a plain close would make it log an error for what is the client's mistake).
            let context = loopBound.value
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            context.close(promise: nil)
        }
    }

    /// Where the head's blank line starts, if it is in `bytes`.
    private static func headEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}

/// Sits behind the HTTP parser while the first request is read (the WebSocket upgrade handler answers none of the
/// parser's errors): a head it refuses is answered 431 (too large) or 400 and the connection closed, not held open.
final class FirstRequestParserErrors: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let headGuard: FirstRequestHeadGuard

    init(headGuard: FirstRequestHeadGuard) { self.headGuard = headGuard }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !headGuard.answered else {
            context.fireErrorCaught(error)
            return
        }
        headGuard.refuseForParser(parserError == .headerOverflow ? "431 Request Header Fields Too Large" : "400 Bad Request")
    }
}

/// Closes a connection whose request body is not complete `readTimeout` after its head, and answers 431 to a later
/// request on a kept-alive connection whose head is too large (the first one is `FirstRequestHeadGuard`'s).
final class RequestReadGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let readTimeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(readTimeout: TimeAmount) { self.readTimeout = readTimeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline?.cancel()
            deadline = context.eventLoop.scheduleTask(in: readTimeout) { loopBound.value.close(promise: nil) }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow {
            deadline?.cancel()
            let head = HTTPResponse(status: .init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                                    headerFields: [.connection: "close", .contentLength: "0"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
            return
        }
        context.fireErrorCaught(error)
    }
}

/// A count of work in progress with a ceiling. At the ceiling, work waits its turn, first come first served, for at
/// most `patience`, then is turned away: a device that already paid for its connection and hello is better served a
/// little late than sent to redial (turned away at once, 1,000 devices switched on at 200 a second were refused 2,830
/// times, and each refusal cost the node a connection, an upgrade and a hello again: measured, issue 13).
final class AdmissionGate: Sendable {
    let limit: Int
    let patience: Duration

    private struct State {
        var inProgress = 0
        /// Waiters in arrival order, from `head` on.
        var order: [UInt64] = []
        var head = 0
        var nextId: UInt64 = 0
        /// Waiters suspended, by id.
        var parked: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        /// Answers given to waiters not suspended yet (a place, a timeout or a cancellation can come first).
        var decided: [UInt64: Bool] = [:]
    }

    private let state = Mutex(State())

    init(limit: Int, patience: Duration = .zero) {
        self.limit = limit
        self.patience = patience
    }

    /// `work`'s result, or nil without running it when no place came free within `patience`.
    func ifAdmitted<T>(_ work: () async throws -> T) async rethrows -> T? {
        guard await enter() else { return nil }
        defer { leave() }
        return try await work()
    }

    private func enter() async -> Bool {
        enum Entry { case admitted, refused, waiting(UInt64) }
        let entry: Entry = state.withLock { state in
            if state.inProgress < limit {
                state.inProgress += 1
                return .admitted
            }
            guard patience > .zero else { return .refused }
            state.nextId += 1
            state.order.append(state.nextId)
            return .waiting(state.nextId)
        }
        guard case .waiting(let id) = entry else {
            if case .admitted = entry { return true }
            return false
        }
        let timer = Task { [patience] in
            try? await Task.sleep(for: patience)
            self.refuse(id)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let answer: Bool? = state.withLock { state in
                    if let answer = state.decided.removeValue(forKey: id) { return answer }
                    state.parked[id] = continuation
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            refuse(id)
        }
    }

    /// A place comes free: handed straight to the longest waiter, if any.
    private func leave() {
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard state.head < state.order.count else {
                state.inProgress -= 1
                return nil
            }
            let id = state.order[state.head]
            state.head += 1
            // Served waiters are dropped from the front now and then: under a queue that never empties, the array
            // would otherwise grow by one for every device ever served.
            if state.head == state.order.count || state.head >= 1_024 {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            guard let parked = state.parked.removeValue(forKey: id) else {
                state.decided[id] = true
                return nil
            }
            return parked
        }
        next?.resume(returning: true)
    }

    /// A waiter's patience ran out (or its task was cancelled) before a place came: unless one already did.
    private func refuse(_ id: UInt64) {
        let parked: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard let index = state.order[state.head...].firstIndex(of: id) else { return nil }
            state.order.remove(at: index)
            guard let parked = state.parked.removeValue(forKey: id) else {
                state.decided[id] = false
                return nil
            }
            return parked
        }
        parked?.resume(returning: false)
    }
}
