import Foundation
import LatchkeyProtocol

/// The two catalogues, loaded once: key → text, with `{name}` placeholders.
public struct PortalCatalog: Sendable {
    public let strings: [Language: [String: String]]

    public static func bundled() throws -> PortalCatalog {
        var strings: [Language: [String: String]] = [:]
        for language in Language.allCases {
            guard let url = Bundle.module.url(forResource: language.rawValue, withExtension: "json", subdirectory: "Portal/catalogs") else {
                throw LatchkeyError.notFound("The portal catalogue '\(language.rawValue)' is missing.")
            }
            strings[language] = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: url))
        }
        return PortalCatalog(strings: strings)
    }

    /// The page templates the catalogues serve.
    public static var templatesDirectory: URL? {
        Bundle.module.url(forResource: "templates", withExtension: nil, subdirectory: "Portal")
    }

    /// Keys present in one catalogue and missing in another.
    public var missingKeys: [String] {
        let all = strings.values.reduce(into: Set<String>()) { $0.formUnion($1.keys) }
        return all.filter { key in strings.values.contains { $0[key] == nil } }.sorted()
    }

    /// A time as pages and e-mails write it: `26/11/2026 10:59 UTC` in Italian, `2026-11-26 10:59 UTC` in English.
    static func time(_ date: Date, _ language: Language) -> String {
        let time = UTCTime(date)
        return language == .it
            ? "\(time.day)/\(time.month)/\(time.year) \(time.hour):\(time.minute) UTC"
            : "\(time.year)-\(time.month)-\(time.day) \(time.hour):\(time.minute) UTC"
    }

    public func text(_ key: String, _ language: Language, _ parameters: [String: String] = [:]) -> String {
        var text = strings[language]?[key] ?? strings[.en]?[key] ?? key
        for (name, value) in parameters { text = text.replacingOccurrences(of: "{\(name)}", with: value) }
        return text
    }
}

/// A time's fields in UTC, zero-padded, for the fixed patterns pages and e-mails write. Read from a gregorian calendar
/// made once: a `DateFormatter` or `ISO8601DateFormatter` made per call (ICU underneath) was a tenth of the server's
/// CPU on a list of 100 notifications (perf, issue 13).
struct UTCTime {
    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    let year, month, day, hour, minute, second: String

    init(_ date: Date) {
        let fields = Self.calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func padded(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        (year, month, day) = (padded(fields.year, 4), padded(fields.month, 2), padded(fields.day, 2))
        (hour, minute, second) = (padded(fields.hour, 2), padded(fields.minute, 2), padded(fields.second, 2))
    }
}
