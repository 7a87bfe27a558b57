import Foundation
import LatchkeyProtocol
import Logging
import ServiceLifecycle

/// Fans new notifications out to the accounts listening on `GET /notifications/stream`: this node's own at once, and
/// through the relay (PostgreSQL `LISTEN/NOTIFY`) those of every other node sharing the database.
public actor NotificationHub: NotificationPublisher, Service {
    private var subscribers: [UUID: [UUID: AsyncStream<AccountNotification>.Continuation]] = [:]
    private var closed = false
    private var relay: NodeRelay?

    public init() {}

    func relay(through relay: NodeRelay) {
        self.relay = relay
    }

    /// A stream of the account's notifications from now on; it ends when the listener goes or the service stops.
    public func subscribe(accountId: UUID) -> AsyncStream<AccountNotification> {
        let (stream, continuation) = AsyncStream.makeStream(of: AccountNotification.self, bufferingPolicy: .bufferingNewest(100))
        guard !closed else {
            continuation.finish()
            return stream
        }
        let subscription = UUID()
        subscribers[accountId, default: [:]][subscription] = continuation
        continuation.onTermination = { _ in
            Task { await self.unsubscribe(accountId: accountId, subscription: subscription) }
        }
        return stream
    }

    public func publish(_ notifications: [AccountNotification]) async {
        deliver(notifications)
        await relay?.send(notifications.map { .notification(accountId: $0.accountId, notification: API.Notification($0)) })
    }

    /// Hands notifications to this node's listeners.
    func deliver(_ notifications: [AccountNotification]) {
        for notification in notifications {
            for continuation in subscribers[notification.accountId, default: [:]].values {
                continuation.yield(notification)
            }
        }
    }

    private func unsubscribe(accountId: UUID, subscription: UUID) {
        subscribers[accountId]?[subscription] = nil
        if subscribers[accountId]?.isEmpty == true { subscribers[accountId] = nil }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        closeAll()
    }

    private func closeAll() {
        closed = true
        for continuation in subscribers.values.flatMap(\.values) { continuation.finish() }
        subscribers = [:]
    }
}

/// Writes down expired requests and tells both sides, so that notifications go out even when nobody reads; and marks
/// offline devices whose channel went silent. Correctness does not depend on it: reads apply expiry and silence themselves.
struct ExpirySweeper: Service {
    let resets: PasswordResetService
    let devices: DeviceService
    let limiter: RateLimiter
    let accounts: AccountService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // Cancelled (another service failed, say the server could not bind), the sleep below returns at once:
        // the loop must end then, not spin.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let expired = try await resets.expireDue()
                if expired > 0 { logger.info("Expired password reset requests", metadata: ["count": "\(expired)"]) }
                try await devices.markSilentDevicesOffline()
                try await limiter.purge()
                try await accounts.purgeExpiredSessions()
            } catch {
                // Stopping, the database may close first: that is no failure to report.
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.error("Expiry sweep failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
