import Crypto
import Foundation
import HummingbirdWebSocket
import LatchkeyProtocol
import Logging
import NIOCore
import ServiceLifecycle

/// The open device channels of this node, and the way to a device whose channel another node holds (the relay): the
/// platform tells devices their binding changed and asks them to compare codes, whichever node the call came to.
public actor DeviceChannelHub: DeviceMessenger {
    private var channels: [String: (id: UUID, outbound: WebSocketOutboundWriter)] = [:]
    /// Code checks sent and not yet answered, by their nonce.
    private var waiting: [String: CheckedContinuation<CodeCheckAnswer, any Error>] = [:]
    private var relay: NodeRelay?
    private let answerTimeout: Duration

    public init(answerTimeout: Duration = .seconds(5)) {
        self.answerTimeout = answerTimeout
    }

    func relay(through relay: NodeRelay) {
        self.relay = relay
    }

    /// Registers a new channel for the device; a channel it replaces is closed (the device reconnected).
    func register(serial: String, outbound: WebSocketOutboundWriter) -> UUID {
        let id = UUID()
        if let replaced = channels[serial]?.outbound {
            Task { try? await replaced.close(.goingAway, reason: "replaced by a newer connection") }
        }
        channels[serial] = (id, outbound)
        return id
    }

    /// Removes this connection's registration only, never a newer one's.
    func unregister(serial: String, id: UUID) {
        guard channels[serial]?.id == id else { return }
        channels[serial] = nil
    }

    public func bindingChanged(serial: String, siteId: UUID?) async {
        guard let outbound = channels[serial]?.outbound else {
            await relay?.send([.bindingChanged(serial: serial, siteId: siteId)])
            return
        }
        try? await DeviceChannel.send(.bound(siteId: siteId), on: outbound)
    }

    public func check(_ check: CodeCheck, serial: String) async throws -> CodeCheckAnswer {
        let local = channels[serial]?.outbound
        guard local != nil || relay != nil else { throw LatchkeyError.deviceOffline(serial: serial) }
        let nonce = check.nonce
        let timeout = Task { [answerTimeout] in
            try await Task.sleep(for: answerTimeout)
            self.fail(nonce: nonce, with: LatchkeyError.deviceOffline(serial: serial))
        }
        defer { timeout.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            waiting[nonce] = continuation
            Task {
                if let local {
                    do { try await DeviceChannel.send(.checkCode(check), on: local) } catch {
                        self.fail(nonce: nonce, with: LatchkeyError.deviceOffline(serial: serial))
                    }
                } else if let relay {
                    await relay.send([.codeCheck(serial: serial, check: check, replyTo: relay.node)])
                }
            }
        }
    }

    /// A device's answer, from its channel on this node or relayed from another.
    func answered(_ answer: CodeCheckAnswer) {
        waiting.removeValue(forKey: answer.nonce)?.resume(returning: answer)
    }

    private func fail(nonce: String, with error: any Error) {
        waiting.removeValue(forKey: nonce)?.resume(throwing: error)
    }

    /// A message from another node: acted on only by the node holding the device's channel.
    func relayed(_ message: NodeRelay.Message) async {
        switch message {
        case .bindingChanged(let serial, let siteId):
            if let outbound = channels[serial]?.outbound { try? await DeviceChannel.send(.bound(siteId: siteId), on: outbound) }
        case .codeCheck(let serial, let check, let replyTo):
            guard let outbound = channels[serial]?.outbound else { return }
            forwarded[check.nonce] = replyTo
            try? await DeviceChannel.send(.checkCode(check), on: outbound)
        case .codeCheckAnswer(let to, let answer):
            if to == relay?.node { answered(answer) }
        case .notification:
            return
        }
    }

    /// Checks this node forwarded for another: their answers go back through the relay.
    private var forwarded: [String: UUID] = [:]

    /// An answer arriving on a device's channel here: for a check asked here, or one forwarded for another node.
    func deviceAnswered(_ answer: CodeCheckAnswer) async {
        if let node = forwarded.removeValue(forKey: answer.nonce) {
            await relay?.send([.codeCheckAnswer(to: node, answer: answer)])
        } else {
            answered(answer)
        }
    }
}

/// `GET /api/v1/devices/channel`: a device's outbound WebSocket to the platform.
///
/// The platform challenges, the device proves its certified key in `hello`, the platform proves its own in `welcome`,
/// and from then on the device is online: its receipts complete requests even when the courier lost its connection
/// after the device applied the reset, and it answers the code checks the platform forwards.
struct DeviceChannel: Sendable {
    static let path = "/api/v1/devices/channel"

    let devices: DeviceService
    let resets: PasswordResetService
    let hub: DeviceChannelHub
    let signingKey: Curve25519.Signing.PrivateKey
    /// The previous key's introduction of `signingKey`, after a rotation.
    let rotation: KeyRotation?
    let heartbeatInterval: Duration
    let helloTimeout: Duration
    let logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let nonce = Base64URL.random()
        try await Self.send(.challenge(nonce: nonce), on: outbound)
        var messages = inbound.messages(maxSize: 64 * 1024).makeAsyncIterator()
        // A connection that never says hello is not held.
        let deadline = Task { [helloTimeout] in
            try await Task.sleep(for: helloTimeout)
            try await outbound.close(.policyViolation, reason: "no hello")
        }
        let first = try await messages.next()
        deadline.cancel()
        var hello: DeviceHello?
        if case .text(let text)? = first, case .hello(let said)? = DeviceChannelMessage(text: text) { hello = said }
        guard let hello else {
            try await Self.refuse(.invalidRequest("The first message must be hello, within \(helloTimeout)."), on: outbound)
            return
        }
        let connection = UUID()
        let bound: Bool
        do {
            bound = try await devices.connect(hello, challenge: nonce, connectionId: connection)
        } catch let error as LatchkeyError {
            logger.warning("Device channel refused", metadata: ["serial": "\(hello.serial.prefix(64))", "code": "\(error.code.rawValue)"])
            try await Self.refuse(error, on: outbound)
            return
        }
        let serial = hello.serial
        let registration = await hub.register(serial: serial, outbound: outbound)
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
        let welcome = try PlatformWelcome.sign(deviceNonce: hello.deviceNonce, serial: serial, bound: bound, with: signingKey,
                                               rotation: rotation)
        try await Self.send(.welcome(welcome), on: outbound)
        do {
            // A service shutting down closes its device channels rather than wait for the devices to leave.
            try await withGracefulShutdownHandler {
                while let message = try await messages.next() {
                    guard case .text(let text) = message, let decoded = DeviceChannelMessage(text: text) else { continue }
                    if case .codeChecked(let answer) = decoded {
                        await hub.deviceAnswered(answer)
                        continue
                    }
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
        await hub.unregister(serial: serial, id: registration)
        try? await devices.disconnect(serial: serial, connectionId: connection)
    }

    static func send(_ message: DeviceChannelMessage, on outbound: WebSocketOutboundWriter) async throws {
        try await outbound.write(.text(try message.text))
    }

    private static func refuse(_ error: LatchkeyError, on outbound: WebSocketOutboundWriter) async throws {
        try await send(.refused(code: error.code, message: error.message), on: outbound)
        try await outbound.close(.policyViolation, reason: error.code.rawValue)
    }
}
