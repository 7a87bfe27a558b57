import Foundation
import LatchkeyProtocol

/// Which part of a list that can grow (an installer's 500 sites, a site's devices, a busy inbox) a caller wants:
/// at most `limit` items after `after`. Lists are read by key (keyset), so a page costs the same on the
/// thousandth page as on the first, and an item added meanwhile is neither skipped nor shown twice.
public struct PageRequest: Sendable, Equatable {
    public static let defaultLimit = 100
    public static let maximumLimit = 500

    public var limit: Int
    public var after: PageCursor?

    public init(limit: Int = PageRequest.defaultLimit, after: PageCursor? = nil) {
        self.limit = limit
        self.after = after
    }

    /// From `?limit` and `?cursor` as a caller typed them; a bad one is the caller's mistake.
    public init(limit text: String?, cursor: String?) throws(LatchkeyError) {
        var limit = Self.defaultLimit
        if let text {
            guard let parsed = Int(text), (1...Self.maximumLimit).contains(parsed) else {
                throw .invalidRequest("limit must be a whole number from 1 to \(Self.maximumLimit).")
            }
            limit = parsed
        }
        self.init(limit: limit, after: try PageCursor.given(cursor))
    }
}

/// Where a list continues: the sort key of the last item shown. Opaque to callers (base64url).
public enum PageCursor: Sendable, Equatable {
    /// Lists ordered by a time, ties broken by id (sites, requests, notifications). The time keeps every bit of the
    /// stored value, so the next page starts exactly after it.
    case time(Date, UUID)
    /// Lists ordered by a text key (a site's devices, by serial).
    case key(String)

    public init?(_ text: String) {
        guard let data = Base64URL.decode(text), let plain = String(data: data, encoding: .utf8) else { return nil }
        guard let space = plain.firstIndex(of: " ") else { return nil }
        let rest = plain[plain.index(after: space)...]
        switch plain[..<space] {
        case "t":
            let parts = rest.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let bits = UInt64(parts[0], radix: 16), let id = UUID(storedText: String(parts[1])) else { return nil }
            let seconds = Double(bitPattern: bits)
            guard seconds.isFinite else { return nil }
            self = .time(Date(timeIntervalSince1970: seconds), id)
        case "k" where !rest.isEmpty:
            self = .key(String(rest))
        default:
            return nil
        }
    }

    /// The cursor a caller sent, if any; one this service did not write is the caller's mistake.
    public static func given(_ text: String?) throws(LatchkeyError) -> PageCursor? {
        guard let text else { return nil }
        guard let cursor = PageCursor(text) else {
            throw .invalidRequest("cursor is not one this list gave: start again without it, then follow the Link header's next page.")
        }
        return cursor
    }

    public var text: String {
        switch self {
        case .time(let date, let id): Base64URL.encode(Data("t \(String(date.timeIntervalSince1970.bitPattern, radix: 16)) \(id)".utf8))
        case .key(let key): Base64URL.encode(Data("k \(key)".utf8))
        }
    }
}

/// One page of a list, and where the next one starts (nil: this was the last).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: PageCursor?

    public init(items: [Item], next: PageCursor?) {
        self.items = items
        self.next = next
    }

    /// From up to `limit + 1` items read in order: the one beyond `limit` only says that more exist.
    init(reading items: [Item], limit: Int, cursor: (Item) -> PageCursor) {
        let shown = Array(items.prefix(limit))
        self.init(items: shown, next: items.count > limit ? shown.last.map(cursor) : nil)
    }

    public func map<Other>(_ transform: (Item) throws -> Other) rethrows -> Page<Other> {
        Page<Other>(items: try items.map(transform), next: next)
    }
}
