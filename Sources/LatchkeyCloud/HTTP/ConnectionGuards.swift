import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// How long, and how much, one HTTP connection may hold the server before it has said what it wants: a client that
/// connects and stays silent, trickles its headers or its body, or sends 200 KB of headers is dropped, not served.
public struct ConnectionLimits: Sendable {
    /// The first request's head must arrive whole within this time of the connection opening.
    public var headerTimeout: TimeAmount = .seconds(10)
    /// A request's body must arrive whole within this time of its head.
    public var readTimeout: TimeAmount = .seconds(30)
    /// A kept-alive connection with nothing in flight is closed after this (a later request's head must come sooner).
    public var idleTimeout: TimeAmount = .seconds(60)
    /// A request head larger than this is answered 431 and its connection closed.
    public var maxHeaderBytes = 16 * 1024
    /// Device channels one source address may hold (a site's devices share its public address behind NAT).
    public var channelsPerAddress = 1_000
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
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FirstRequestHeadGuard(limits: limits))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Watches the raw bytes of a connection until its first request head is complete: closes it when the head takes
/// longer than `headerTimeout` (408) or grows past `maxHeaderBytes` (431), then steps out of the way.
final class FirstRequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private var received = 0
    /// The last bytes seen, so a head's end split across two reads is still found.
    private var tail: [UInt8] = []
    private var deadline: Scheduled<Void>?
    private var done = false

    init(limits: ConnectionLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: limits.headerTimeout) {
            let (guardHandler, context) = loopBound.value
            guardHandler.refuse(context, status: "408 Request Timeout")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        let buffer = unwrapInboundIn(data)
        let bytes = Array(buffer.readableBytesView)
        received += bytes.count
        let window = tail + bytes
        if Self.headEnd(in: window) {
            done = true
            deadline?.cancel()
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
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
        guard !done else { return }
        done = true
        deadline?.cancel()
        let answer = "HTTP/1.1 \(status)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: answer))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    private static func headEnd(in bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return true
        }
        return false
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
