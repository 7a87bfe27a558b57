import Foundation

/// What one transaction produced: a value, the notifications to publish once it commits, and an error to raise after
/// it. Some refusals must still leave a trace — an expired request written as expired, a wrong verification code
/// counted — so they commit first and fail after.
struct Outcome<Value: Sendable>: Sendable {
    var value: Value?
    var notifications: [AccountNotification] = []
    var failure: LatchkeyError?

    /// Publishes the notifications, then answers the value or raises the failure.
    func settle(publishingWith publisher: any NotificationPublisher) async throws -> Value {
        await publisher.publish(notifications)
        if let failure { throw failure }
        guard let value else { throw LatchkeyError.notFound("Nothing was changed.") }
        return value
    }
}
