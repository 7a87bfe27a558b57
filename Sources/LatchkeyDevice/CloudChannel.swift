import Foundation
import HummingbirdWSClient
import LatchkeyProtocol
import Logging
import NIOSSL
import ServiceLifecycle

/// The device's outbound WebSocket to the platform: proves its certified identity, checks the platform's against the
/// pinned key, reports receipts, answers code checks, and reconnects with jittered backoff whenever the connection drops.
struct CloudChannel: Service {
    let device: EmulatedDevice
    let url: String
    /// Used for `wss://` only.
    let tls: TLSConfiguration
    let logger: Logger
    let heartbeat: Duration
    /// `host:port` of the local API on each LAN, once it listens.
    let lanAddresses: @Sendable () async -> [String]

    func run() async throws {
        var backoff = ReconnectBackoff()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await cancelWhenGracefulShutdown { try await connectOnce() }
            } catch NIOSSLError.handshakeFailed(let reason) {
                // Only a failed handshake is about trust: a platform killed or restarting ends TLS without its goodbye
                // (`uncleanShutdown`), which is the channel going down like any other.
                logger.error("The platform's TLS certificate is not trusted: give --ca-file with the CA that signed it",
                             metadata: ["url": "\(url)", "error": "\(reason)"])
            } catch {
                logger.info("Cloud channel down", metadata: ["error": "\(error)"])
            }
            let wait = backoff.next(after: ContinuousClock.now - started)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
    }

    private func connectOnce() async throws {
        let configuration = WebSocketClientConfiguration(autoPing: .enabled(timePeriod: heartbeat))
        try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: url.hasPrefix("wss://") ? tls : nil,
                                          logger: logger) { inbound, outbound, _ in
            var messages = inbound.messages(maxSize: 64 * 1024).makeAsyncIterator()
            guard case .text(let text)? = try await messages.next(), let first = DeviceChannelMessage(text: text) else { return }
            guard case .challenge(let nonce) = first else {
                // Turned away before the handshake (too many from this address): said in the log, like any refusal.
                if case .refused(let code, let message) = first { Self.refused(code: code, message: message, logger: logger) }
                return
            }
            let deviceNonce = Base64URL.random()
            let hello = try await device.hello(challenge: nonce, deviceNonce: deviceNonce, lanAddresses: await lanAddresses())
            try await outbound.write(.text(try DeviceChannelMessage.hello(hello).text))
            guard case .text(let answer)? = try await messages.next(), let welcome = DeviceChannelMessage(text: answer) else { return }
            switch welcome {
            case .welcome(let welcome):
                do {
                    try await device.accept(welcome, deviceNonce: deviceNonce)
                } catch {
                    logger.error("Refusing the platform", metadata: ["reason": "\((error as? DeviceError)?.message ?? "\(error)")"])
                    try? await outbound.close(.policyViolation, reason: "platform key not pinned")
                    return
                }
                logger.info("Connected to Latchkey", metadata: ["bound": "\(welcome.bound)"])
            case .refused(let code, let message):
                Self.refused(code: code, message: message, logger: logger)
                return
            default:
                return
            }
            // Receipts go out as they appear, including ones applied while the channel was down.
            let receipts = await device.receiptsToReport()
            let reporter = Task {
                for await receipt in receipts { try await outbound.write(.text(try DeviceChannelMessage.receipt(receipt).text)) }
            }
            defer { reporter.cancel() }
            // A device that stops says goodbye, so the platform shows it offline at once rather than after pings fail.
            let goodbye: @Sendable () -> Void = { Task { try? await outbound.close(.goingAway, reason: "device stopping") } }
            try await withTaskCancellationHandler {
                try await withGracefulShutdownHandler {
                    while let message = try await messages.next() {
                        guard case .text(let text) = message, let decoded = DeviceChannelMessage(text: text) else { continue }
                        switch decoded {
                        case .bound:
                            await device.bindingChanged()
                        case .receiptAccepted(let requestId):
                            await device.receiptReported(requestId: requestId)
                        case .checkCode(let check):
                            let answer = try await device.check(check)
                            try await outbound.write(.text(try DeviceChannelMessage.codeChecked(answer).text))
                        case .approvalNotice(let notice):
                            do { try await device.accept(notice) } catch {
                                logger.warning("Refused an approval notice", metadata: ["reason": "\((error as? DeviceError)?.message ?? "\(error)")"])
                            }
                        case .deliver(let delivery):
                            let answer = await device.deliver(delivery)
                            try await outbound.write(.text(try DeviceChannelMessage.delivered(answer).text))
                        case .refused(let code, let message):
                            logger.warning("The platform refused a message", metadata: ["code": "\(code.rawValue)", "message": "\(message)"])
                        default:
                            continue
                        }
                    }
                } onGracefulShutdown: {
                    goodbye()
                }
            } onCancel: {
                goodbye()
            }
        }
    }

    /// A node busy with handshakes is routine (the device comes back after its backoff); anything else needs a person.
    private static func refused(code: APIErrorCode, message: String, logger: Logger) {
        logger.log(level: code == .rateLimited ? .info : .error, "The platform refused this device",
                   metadata: ["code": "\(code.rawValue)", "message": "\(message)"])
    }
}
