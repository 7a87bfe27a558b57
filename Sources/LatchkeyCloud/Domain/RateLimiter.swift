import Foundation
import LatchkeyProtocol

/// How many attempts one key may make in one window (OWASP ASVS V2.2, NIST SP 800-63B throttling).
public struct RateLimit: Sendable, Equatable {
    public let name: String
    public let limit: Int
    public let window: TimeInterval

    public init(name: String, limit: Int, window: TimeInterval) {
        self.name = name
        self.limit = limit
        self.window = window
    }

    /// Sign-in from one address, whatever the account: a flood is refused before any password is hashed.
    public static let signInPerAddress = RateLimit(name: "sign-in/address", limit: 20, window: 60)
    /// Sign-in to one account from one address: a stranger's guesses lock the stranger, not the owner elsewhere.
    public static let signInPerAccountAndAddress = RateLimit(name: "sign-in/account+address", limit: 10, window: 15 * 60)
    public static let signUpPerAddress = RateLimit(name: "sign-up/address", limit: 10, window: 60 * 60)
    public static let bindingPerAddress = RateLimit(name: "binding/address", limit: 20, window: 10 * 60)
    public static let presenceCodePerAccount = RateLimit(name: "presence-code/account", limit: 10, window: 10 * 60)
    public static let grantPerAccount = RateLimit(name: "grant/account", limit: 30, window: 10 * 60)
}

/// Which limits apply: the standard ones; each multiplied (a load test from one address); or none, only for measuring
/// what the limits save (the benchmark's sign-in flood) — never for a service people use.
public enum RateLimitPolicy: Sendable, Equatable, CustomStringConvertible {
    case standard
    case scaled(Int)
    case off

    public init?(_ text: String) {
        switch text.lowercased() {
        case "standard": self = .standard
        case "off": self = .off
        default:
            guard text.hasPrefix("x"), let factor = Int(text.dropFirst()), factor > 0 else { return nil }
            self = .scaled(factor)
        }
    }

    public var description: String {
        switch self {
        case .standard: "standard"
        case .scaled(let factor): "standard × \(factor)"
        case .off: "off"
        }
    }
}

/// Counts attempts in fixed windows, in the store (so several nodes share the counts), and refuses the ones over
/// the limit with `rate_limited` and when to come back.
public struct RateLimiter: Sendable {
    let store: any LatchkeyStore
    let clock: LatchkeyClock
    let policy: RateLimitPolicy

    public init(store: any LatchkeyStore, clock: LatchkeyClock, policy: RateLimitPolicy = .standard) {
        self.store = store
        self.clock = clock
        self.policy = policy
    }

    /// Counts one attempt under `key`; throws `rateLimited` once the window's count passes the limit.
    public func attempt(_ standard: RateLimit, key: String) async throws {
        let limit: RateLimit
        switch policy {
        case .off: return
        case .standard: limit = standard
        case .scaled(let factor): limit = RateLimit(name: standard.name, limit: standard.limit * factor, window: standard.window)
        }
        let now = clock.now().timeIntervalSince1970
        let bucket = Int64(now / limit.window)
        let counted = "\(limit.name):\(key.prefix(200))"
        let closes = Int64((Double(bucket + 1) * limit.window).rounded(.up))
        let count = try await store.transaction { try await $0.rateCounters.hit(key: counted, bucket: bucket, closes: closes) }
        guard count > limit.limit else { return }
        let retryAfter = Int((Double(bucket + 1) * limit.window - now).rounded(.up))
        throw LatchkeyError.rateLimited(retryAfter: max(1, retryAfter))
    }

    /// Forgets windows that have closed.
    public func purge() async throws {
        let now = Int64(clock.now().timeIntervalSince1970)
        try await store.transaction { try await $0.rateCounters.purge(closedBefore: now) }
    }
}
