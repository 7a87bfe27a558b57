import Foundation
import LatchkeyProtocol
import Logging
import ServiceLifecycle

/// Fans new notifications out to the accounts listening on `GET /notifications/stream`: this node's own at once, and
/// through the relay (PostgreSQL `LISTEN/NOTIFY`) those of every other node sharing the database.
public actor NotificationHub: NotificationPublisher, Service {
    /// A notification on its way to a stream, with when it was published (its transaction had committed).
    struct Published: Sendable {
        let notification: AccountNotification
        let publishedAt: Date
    }

    private struct Subscriber {
        let continuation: AsyncStream<Published>.Continuation
        /// The session (its token's hash) the stream was opened with: signing it out ends the stream.
        let session: String
    }

    private var subscribers: [UUID: [UUID: Subscriber]] = [:]
    private var closed = false
    private var relay: NodeRelay?
    /// Commit to write, over every stream this node writes.
    nonisolated let deliveryLatency = DeliveryLatency()

    public init() {}

    func relay(through relay: NodeRelay) {
        self.relay = relay
    }

    /// A stream of the account's notifications from now on; it ends when the listener goes, its session is signed out
    /// (on any node) or the service stops.
    func subscribe(accountId: UUID, session: String) -> AsyncStream<Published> {
        let (stream, continuation) = AsyncStream.makeStream(of: Published.self, bufferingPolicy: .bufferingNewest(100))
        guard !closed else {
            continuation.finish()
            return stream
        }
        let subscription = UUID()
        subscribers[accountId, default: [:]][subscription] = Subscriber(continuation: continuation, session: session)
        continuation.onTermination = { _ in
            Task { await self.unsubscribe(accountId: accountId, subscription: subscription) }
        }
        return stream
    }

    /// Called once the notifications' transaction has committed.
    public func publish(_ notifications: [AccountNotification]) async {
        let now = Date()
        deliver(notifications, publishedAt: now)
        await relay?.send(notifications.map { .notification(accountId: $0.accountId, notification: API.Notification($0),
                                                     publishedAt: now.timeIntervalSince1970) })
    }

    /// Hands notifications to this node's listeners.
    func deliver(_ notifications: [AccountNotification], publishedAt: Date) {
        for notification in notifications {
            for subscriber in subscribers[notification.accountId, default: [:]].values {
                subscriber.continuation.yield(Published(notification: notification, publishedAt: publishedAt))
            }
        }
    }

    public func sessionEnded(_ session: String) async {
        endStreams(ofSession: session)
        await relay?.send([.sessionEnded(session: session)])
    }

    /// Ends this node's streams opened with the session.
    func endStreams(ofSession session: String) {
        for subscriber in subscribers.values.flatMap(\.values) where subscriber.session == session {
            subscriber.continuation.finish()
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
        for subscriber in subscribers.values.flatMap(\.values) { subscriber.continuation.finish() }
        subscribers = [:]
    }
}

/// Counts what each source holds open for a long time (device channels, notification streams), so that one address
/// or one account cannot take them all.
actor OpenConnectionQuota {
    let limit: Int
    private var held: [String: Int] = [:]

    init(limit: Int) { self.limit = limit }

    /// Takes one for `key`, or says no when it already holds `limit`.
    func take(_ key: String) -> Bool {
        guard held[key, default: 0] < limit else { return false }
        held[key, default: 0] += 1
        return true
    }

    func give(_ key: String) {
        let left = held[key, default: 1] - 1
        held[key] = left > 0 ? left : nil
    }
}

/// Work every node does on a timer (sweeps, its heartbeat, the mail queue): `round` every `interval` until the service
/// stops. A failed round is logged and the next one comes anyway; a round that fails because the service is stopping
/// (the database may close first) is no failure to report.
struct Periodic: Service {
    let interval: Duration
    let logger: Logger
    let failure: Logger.Message
    let round: @Sendable () async throws -> Void

    func run() async {
        // Cancelled (another service failed, say the server could not bind), the sleep below returns at once:
        // the loop must end then, not spin.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await round()
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.error(failure, metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
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

    func run() async {
        await Periodic(interval: interval, logger: logger, failure: "Expiry sweep failed") { [resets, devices, limiter, accounts, logger] in
            let expired = try await resets.expireDue()
            if expired > 0 { logger.info("Expired password reset requests", metadata: ["count": "\(expired)"]) }
            try await devices.markSilentDevicesOffline()
            try await limiter.purge()
            try await accounts.purgeExpiredSessions()
        }.run()
    }
}
