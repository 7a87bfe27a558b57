import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Synchronization

/// HTTP/1, with the upgrade to the device channel, where an idle device channel holds no task.
///
/// Through Hummingbird's WebSocket channel, each device channel was held by four or five tasks for as long as the device
/// stayed connected (the connection's, the WebSocket handler's task group and its children, ours), and a task keeps the
/// most stack it ever used until it ends: about 20 of an idle channel's 33 KiB (heaptrack, issue 13). Here the
/// connection's task ends once the channel is upgraded. The channel lives in its pipeline (`DeviceChannelFrames`), and a
/// task runs only for the handshake and while messages are being answered.
struct HTTPWithDeviceChannels<ChannelRouter: HTTPResponder>: ServerChildChannel, HTTPChannelHandler
    where ChannelRouter.Context == AppRequestContext
{
    enum Upgrade: Sendable {
        /// Upgraded: the channel now lives in its pipeline.
        case deviceChannel
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade was asked for and refused: answered 400, and closed.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgrade: EventLoopFuture<Upgrade>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    /// Decides the upgrade: its middleware finds the client's address, its route consents (`DeviceChannelUpgrade`).
    let channelRouter: ChannelRouter
    let http1: HTTP1Channel.Configuration
    let maxFrameSize: Int
    /// Sets the upgraded channel's pipeline up and starts its handshake; on the channel's event loop.
    let opened: @Sendable (any Channel, _ clientAddress: String?) throws -> Void

    init(responder: @escaping HTTPChannelHandler.Responder, channelRouter: ChannelRouter, http1: HTTP1Channel.Configuration,
         maxFrameSize: Int = 1 << 14, opened: @escaping @Sendable (any Channel, String?) throws -> Void) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.channelRouter = channelRouter
        self.http1 = http1
        self.maxFrameSize = maxFrameSize
        self.opened = opened
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let attempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let consent = NIOLoopBoundBox<DeviceChannelUpgrade.Consent?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<Upgrade>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    attempted.value = true
                    return decide(head, channel: channel, logger: logger).map { given in
                        consent.value = given
                        return given == nil ? nil : HTTPHeaders()
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        try opened(channel, consent.value?.clientAddress)
                        return .deviceChannel
                    }
                })
            let upgrades = NIOTypedHTTPServerUpgradeConfiguration<Upgrade>(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try pipeline.addHandlers(http1.additionalChannelHandlers())
                        try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return attempted.value ? .refused(http) : .notUpgraded(http)
                    }
                })
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Upgrade>(upgradeConfiguration: upgrades)
            // As Hummingbird's own channels: requests are taken one at a time, errors and header checks are its own.
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let upgrade = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            return Value(upgrade: upgrade, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgrade.get() {
            case .deviceChannel:
                return
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http):
                try await http.executeThenClose { _, outbound in
                    try await outbound.write(contentsOf: [
                        .head(HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])), .end(nil),
                    ])
                }
            }
        } catch {
            logger.debug("Connection ended before or during its upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// Runs the channel router over the upgrade's head: its consent, or nil (answered 400).
    private func decide(_ head: HTTPRequestHead, channel: any Channel, logger: Logger) -> EventLoopFuture<DeviceChannelUpgrade.Consent?> {
        let promise = channel.eventLoop.makePromise(of: DeviceChannelUpgrade.Consent?.self)
        promise.completeWithTask {
            let upgrade = DeviceChannelUpgrade()
            do {
                let request = Request(head: try HTTPRequest(head, secure: false, splitCookie: false), body: .init(buffer: .init()))
                let context = AppRequestContext(source: .init(channel: channel, logger: logger), upgrade: upgrade)
                guard try await channelRouter.respond(to: request, context: context).status == .ok else { return nil }
            } catch {
                return nil
            }
            return upgrade.consent
        }
        return promise.futureResult
    }

    /// NIO upgrades only a connection's first request: an upgrade asked for later, on a kept-alive connection, is sent
    /// to the same address on a new connection, as Hummingbird does.
    private static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                return try await responder(request, writer, channel)
            }
            let target = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
            try await writer.writeResponse(HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: target]))
            throw LateUpgradeRedirected()
        }
    }
}

/// Ends a connection whose late upgrade was redirected.
private struct LateUpgradeRedirected: Error {}

/// The device channel route's consent to an upgrade, with the client's address as its middleware found it (behind a
/// trusted proxy, the forwarded one). Only the upgrade's own context carries one.
final class DeviceChannelUpgrade: Sendable {
    struct Consent: Sendable {
        let clientAddress: String?
    }

    private let given = Mutex<Consent?>(nil)

    func consent(from clientAddress: String?) {
        given.withLock { $0 = Consent(clientAddress: clientAddress) }
    }

    var consent: Consent? { given.withLock { $0 } }
}
