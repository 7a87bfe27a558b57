import Foundation

/// Where the service reads the time. Injected so that tests move through 5-minute and 24-hour windows without sleeping.
public struct LatchkeyClock: Sendable {
    public let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date) {
        self.now = now
    }

    public static let system = LatchkeyClock { Date() }
}
