import Foundation
import HummingbirdWebSocket
import LatchkeyProtocol
import Logging
import NIOCore
import ServiceLifecycle

/// The open device channels of this node, so that the platform can tell a device its binding changed.
public actor DeviceChannelHub: DeviceNotifier {
    private var channels: [String: (id: UUID, outbound: WebSocketOutboundWriter)] = [:]

    public init() {}

    func register(serial: String, outbound: WebSocketOutboundWriter) -> UUID {
        let id = UUID()
        channels[serial] = (id, outbound)
        return id
    }

    /// True when this connection was still the device's current one (a reconnect may have replaced it).
    func unregister(serial: String, id: UUID) -> Bool {
        guard channels[serial]?.id == id else { return false }
        channels[serial] = nil
        return true
    }

    public func bindingChanged(serial: String, siteId: UUID?) async {
        guard let outbound = channels[serial]?.outbound else { return }
        try? await DeviceChannel.send(.bound(siteId: siteId), on: outbound)
    }
}

/// `GET /api/v1/devices/channel`: a device's outbound WebSocket to the platform.
///
/// The platform challenges, the device proves its key in `hello`, and from then on it is online; its receipts
/// complete requests even when the courier lost its connection after the device applied the reset.
struct DeviceChannel: Sendable {
    static let path = "/api/v1/devices/channel"

    let devices: DeviceService
    let resets: PasswordResetService
    let hub: DeviceChannelHub
    let platformKey: String
    let heartbeatInterval: Duration
    let logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let nonce = Base64URL.random()
        try await Self.send(.challenge(nonce: nonce), on: outbound)
        var messages = inbound.messages(maxSize: 64 * 1024).makeAsyncIterator()
        guard case .text(let text)? = try await messages.next(), case .hello(let hello)? = DeviceChannelMessage(text: text) else {
            try await Self.refuse(.invalidRequest("The first message must be hello."), on: outbound)
            return
        }
        let bound: Bool
        do {
            bound = try await devices.connect(hello, challenge: nonce)
        } catch let error as LatchkeyError {
            logger.warning("Device channel refused", metadata: ["serial": "\(hello.serial.prefix(64))", "code": "\(error.code.rawValue)"])
            try await Self.refuse(error, on: outbound)
            return
        }
        let serial = hello.serial
        let connection = await hub.register(serial: serial, outbound: outbound)
        let heartbeat = Task { [devices, heartbeatInterval, logger] in
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: heartbeatInterval)
                    try await devices.heartbeat(serial: serial)
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("Heartbeat failed", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { heartbeat.cancel() }
        try await Self.send(.welcome(platformKey: platformKey, bound: bound), on: outbound)
        do {
            // A service shutting down closes its device channels rather than wait for the devices to leave.
            try await withGracefulShutdownHandler {
                while let message = try await messages.next() {
                    guard case .text(let text) = message, let decoded = DeviceChannelMessage(text: text) else { continue }
                    guard case .receipt(let receipt) = decoded else { continue }
                    do {
                        _ = try await resets.complete(with: receipt, from: .deviceChannel(serial: serial))
                        try await Self.send(.receiptAccepted(requestId: receipt.requestId), on: outbound)
                    } catch let error as LatchkeyError {
                        try await Self.send(.refused(code: error.code, message: error.message), on: outbound)
                    }
                }
            } onGracefulShutdown: {
                Task { try? await outbound.close(.goingAway, reason: "service stopping") }
            }
        } catch {
            logger.info("Device channel closed", metadata: ["serial": "\(serial)", "error": "\(error)"])
        }
        heartbeat.cancel()
        if await hub.unregister(serial: serial, id: connection) {
            try? await devices.disconnect(serial: serial)
        }
    }

    static func send(_ message: DeviceChannelMessage, on outbound: WebSocketOutboundWriter) async throws {
        try await outbound.write(.text(try message.text))
    }

    private static func refuse(_ error: LatchkeyError, on outbound: WebSocketOutboundWriter) async throws {
        try await send(.refused(code: error.code, message: error.message), on: outbound)
        try await outbound.close(.policyViolation, reason: error.code.rawValue)
    }
}
