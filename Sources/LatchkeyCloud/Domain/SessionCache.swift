import Foundation
import Synchronization

/// Who a bearer token belongs to, remembered for at most half a second on this node: the token → session → account reads
/// are the first two queries of every signed-in request, and a client on a screen sends its requests in bursts.
///
/// Correctness: a sign-out forgets the token here at once and, through the relay, on every other node; if a relay
/// message were lost or late, another node still forgets it within `lifetime` (half a second: the goal is under a second,
/// and a whole second left no room — a loaded CI run read 1.03 s once). A session's own expiry is checked
/// on every use. Holds hashes of tokens, never tokens.
public final class SessionCache: Sendable {
    struct Entry {
        var account: Account
        var sessionExpiresAt: Date
        var cachedAt: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    let lifetime: Duration
    /// Beyond this many sessions the cache starts again empty rather than grow.
    let capacity: Int

    public init(lifetime: Duration = .milliseconds(500), capacity: Int = 50_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func account(forTokenHash hash: String, at now: Date) -> Account? {
        let instant = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[hash] else { return nil }
            guard instant - entry.cachedAt < lifetime, now < entry.sessionExpiresAt else {
                entries[hash] = nil
                return nil
            }
            return entry.account
        }
    }

    func remember(_ account: Account, tokenHash hash: String, sessionExpiresAt: Date) {
        let entry = Entry(account: account, sessionExpiresAt: sessionExpiresAt, cachedAt: ContinuousClock.now)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[hash] = entry
        }
    }

    /// The session ended (signed out here or on another node).
    public func forget(tokenHash hash: String) {
        _ = entries.withLock { $0.removeValue(forKey: hash) }
    }
}
