import Crypto
import Foundation
import LatchkeyProtocol
import Logging
import NIOCore
import NIOWebSocket

/// The open device channels of this node, and the way to a device whose channel another node holds (the relay): the
/// platform tells devices their binding changed and of approved requests, asks them to compare codes and delivers
/// resets, whichever node the call came to.
public actor DeviceChannelHub: DeviceMessenger {
    private var channels: [String: (id: UUID, outbound: DeviceConnection)] = [:]
    /// Questions sent to devices and not yet answered, by the id their answer will carry.
    private var waiting: [String: CheckedContinuation<DeviceChannelMessage, any Error>] = [:]
    /// Questions this node passed to its device for another node: their answers go back through the relay.
    private var forwarded: [String: UUID] = [:]
    private var relay: NodeRelay?
    private let answerTimeout: Duration

    public init(answerTimeout: Duration = .seconds(5)) {
        self.answerTimeout = answerTimeout
    }

    /// The channels this node holds now.
    var openChannels: Int { channels.count }

    func relay(through relay: NodeRelay) {
        self.relay = relay
    }

    /// Registers a new channel for the device; a channel it replaces is closed (the device reconnected).
    func register(serial: String, outbound: DeviceConnection) -> UUID {
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

    // MARK: - DeviceMessenger

    public func bindingChanged(serial: String, siteId: UUID?) async {
        await tell(.bound(siteId: siteId), serial: serial)
    }

    public func notify(_ notice: ApprovalNotice, serial: String) async {
        await tell(.approvalNotice(notice), serial: serial)
    }

    public func check(_ check: CodeCheck, serial: String) async throws -> CodeCheckAnswer {
        guard case .codeChecked(let answer) = try await ask(.checkCode(check), id: check.nonce, serial: serial) else {
            throw LatchkeyError.deviceOffline(serial: serial)
        }
        return answer
    }

    public func deliver(_ delivery: PresenceDelivery, serial: String) async throws -> PresenceDeliveryAnswer {
        guard case .delivered(let answer) = try await ask(.deliver(delivery), id: delivery.deliveryId, serial: serial) else {
            throw LatchkeyError.deviceOffline(serial: serial)
        }
        return answer
    }

    // MARK: - Telling and asking

    /// A message that wants no answer: to the channel here, else to the node that holds it.
    private func tell(_ message: DeviceChannelMessage, serial: String) async {
        if let outbound = channels[serial]?.outbound {
            try? await DeviceChannel.send(message, on: outbound)
        } else {
            await relay?.send([.toDevice(serial: serial, message: message, replyTo: nil)])
        }
    }

    /// A question whose answer carries `id`; `deviceOffline` when no node reaches the device in time.
    private func ask(_ message: DeviceChannelMessage, id: String, serial: String) async throws -> DeviceChannelMessage {
        let local = channels[serial]?.outbound
        guard local != nil || relay != nil else { throw LatchkeyError.deviceOffline(serial: serial) }
        let timeout = Task { [answerTimeout] in
            try await Task.sleep(for: answerTimeout)
            self.fail(id: id, with: LatchkeyError.deviceOffline(serial: serial))
        }
        defer { timeout.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            waiting[id] = continuation
            Task {
                if let local {
                    do { try await DeviceChannel.send(message, on: local) } catch {
                        self.fail(id: id, with: LatchkeyError.deviceOffline(serial: serial))
                    }
                } else if let relay {
                    await relay.send([.toDevice(serial: serial, message: message, replyTo: relay.node)])
                }
            }
        }
    }

    private func fail(id: String, with error: any Error) {
        waiting.removeValue(forKey: id)?.resume(throwing: error)
    }

    /// A message from another node: for a device whose channel is here, or the answer to a question asked here.
    func relayed(_ message: NodeRelay.Message) async {
        switch message {
        case .toDevice(let serial, let message, let replyTo):
            guard let outbound = channels[serial]?.outbound else { return }
            if let replyTo, let id = message.answerId { forwarded[id] = replyTo }
            try? await DeviceChannel.send(message, on: outbound)
        case .fromDevice(let to, let message):
            if to == relay?.node, let id = message.answerId { waiting.removeValue(forKey: id)?.resume(returning: message) }
        case .notification, .sessionEnded:
            return
        }
    }

    /// An answer arriving on a device's channel here: for a question asked here, or one forwarded for another node.
    func deviceAnswered(_ message: DeviceChannelMessage) async {
        guard let id = message.answerId else { return }
        if let node = forwarded.removeValue(forKey: id) {
            await relay?.send([.fromDevice(to: node, message: message)])
        } else {
            waiting.removeValue(forKey: id)?.resume(returning: message)
        }
    }
}

extension DeviceChannelMessage {
    /// The id that pairs a question with its answer: the code check's nonce, the delivery's id.
    var answerId: String? {
        switch self {
        case .checkCode(let check): check.nonce
        case .codeChecked(let answer): answer.nonce
        case .deliver(let delivery): delivery.deliveryId
        case .delivered(let answer): answer.deliveryId
        default: nil
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
    let helloTimeout: Duration
    let channelsPerAddress: OpenConnectionQuota
    let handshakes: AdmissionGate
    let logger: Logger

    /// Starts the channel of a connection just upgraded: the handshake runs in a task that ends once the device is
    /// welcomed, and from then on a task runs only while the device's messages are answered (`DeviceChannelFrames`).
    /// `address`: where the channel comes from (the forwarded address behind a trusted proxy).
    func open(_ connection: DeviceConnection, address: String?) {
        Task { await handshake(connection, address: address) }
    }

    private func handshake(_ connection: DeviceConnection, address: String?) async {
        let source = address ?? "unknown"
        guard await channelsPerAddress.take(source) else {
            logger.warning("Device channel refused: too many from one address", metadata: ["address": "\(source)"])
            try? await Self.refuse(.rateLimited(retryAfter: 60), on: connection)
            return
        }
        let greeting: Greeting?
        do {
            greeting = try await greet(connection, address: address)
        } catch {
            greeting = nil
        }
        guard let greeting else {
            await channelsPerAddress.give(source)
            return
        }
        let registration = await hub.register(serial: greeting.serial, outbound: connection)
        do {
            try await welcome(greeting, on: connection)
        } catch {
            logger.info("Device channel closed", metadata: ["serial": "\(greeting.serial)", "error": "\(error)"])
        }
        // Also on a connection that closed meanwhile: then `ended` runs at once.
        connection.serve(answer: { [self] text in
            await answer(text, from: greeting.serial, on: connection)
        }, ended: { [hub, devices, channelsPerAddress] in
            await hub.unregister(serial: greeting.serial, id: registration)
            try? await devices.disconnect(serial: greeting.serial, connectionId: greeting.connection)
            await channelsPerAddress.give(source)
        })
    }

    /// The platform's proof of its own key, then the approvals given while the device was away: its page may show a
    /// presence code for them.
    private func welcome(_ greeting: Greeting, on connection: DeviceConnection) async throws {
        let welcome = try PlatformWelcome.sign(deviceNonce: greeting.deviceNonce, serial: greeting.serial, bound: greeting.bound,
                                               with: signingKey, rotation: rotation)
        try await Self.send(.welcome(welcome), on: connection)
        for notice in (try? await resets.approvalNotices(serial: greeting.serial)) ?? [] {
            try await Self.send(.approvalNotice(notice), on: connection)
        }
    }

    /// One message from the device: an answer the hub waits for, or a receipt that completes its request. A connection
    /// gone before the answer is written is the channel's end to handle, not an error here.
    private func answer(_ text: String, from serial: String, on connection: DeviceConnection) async {
        guard let decoded = DeviceChannelMessage(text: text) else { return }
        switch decoded {
        case .codeChecked, .delivered:
            await hub.deviceAnswered(decoded)
        case .receipt(let receipt):
            do {
                _ = try await resets.complete(with: receipt, from: .deviceChannel(serial: serial))
                try? await Self.send(.receiptAccepted(requestId: receipt.requestId), on: connection)
            } catch let error as LatchkeyError {
                try? await Self.send(.refused(code: error.code, message: error.message), on: connection)
            } catch {
                logger.error("Device channel receipt failed", metadata: ["serial": "\(serial)", "error": "\(error)"])
            }
        default:
            return
        }
    }

    /// A device that proved its certified identity, written down as connected on `connection`. Only what the channel
    /// needs after the handshake: the hello's certificate chain is not held for as long as the device stays connected.
    private struct Greeting: Sendable {
        let serial: String
        let deviceNonce: String
        let connection: UUID
        let bound: Bool
    }

    /// The challenge, the device's hello, and its identity checked and written down. Only the checking and writing is
    /// costly, and only it passes the gate: waiting for a hello costs nothing, and when the gate counted the wait too,
    /// 32 devices slow to answer (a busy network, a busy box) filled it and turned away the devices behind them, which
    /// backed off for up to 30 s (measured, issue 13). Nil when the device was refused (it has been told why).
    private func greet(_ outbound: DeviceConnection, address: String?) async throws -> Greeting? {
        let nonce = Base64URL.random()
        try await Self.send(.challenge(nonce: nonce), on: outbound)
        // A connection that never says hello is closed by its frames' deadline (`helloTimeout`).
        var hello: DeviceHello?
        if let text = try await outbound.firstMessage(), case .hello(let said)? = DeviceChannelMessage(text: text) { hello = said }
        guard let hello else {
            try await Self.refuse(.invalidRequest("The first message must be hello, within \(helloTimeout)."), on: outbound)
            return nil
        }
        let connection = UUID()
        do {
            guard let bound = try await handshakes.ifAdmitted({
                try await devices.connect(hello, challenge: nonce, connectionId: connection, from: address)
            }) else {
                try await Self.refuse(.rateLimited(retryAfter: 5), on: outbound)
                return nil
            }
            return Greeting(serial: hello.serial, deviceNonce: hello.deviceNonce, connection: connection, bound: bound)
        } catch let error as LatchkeyError {
            logger.warning("Device channel refused", metadata: ["serial": "\(hello.serial.prefix(64))", "code": "\(error.code.rawValue)"])
            try await Self.refuse(error, on: outbound)
            return nil
        }
    }

    static func send(_ message: DeviceChannelMessage, on outbound: DeviceConnection) async throws {
        try await outbound.write(try message.text)
    }

    private static func refuse(_ error: LatchkeyError, on outbound: DeviceConnection) async throws {
        try await send(.refused(code: error.code, message: error.message), on: outbound)
        try await outbound.close(.policyViolation, reason: error.code.rawValue)
    }
}
