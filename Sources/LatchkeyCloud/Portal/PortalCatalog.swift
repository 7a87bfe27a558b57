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
        let (year, month, day) = (UTCTime.padded(time.year, 4), UTCTime.padded(time.month, 2), UTCTime.padded(time.day, 2))
        let (hour, minute) = (UTCTime.padded(time.hour, 2), UTCTime.padded(time.minute, 2))
        return language == .it ? "\(day)/\(month)/\(year) \(hour):\(minute) UTC" : "\(year)-\(month)-\(day) \(hour):\(minute) UTC"
    }

    /// The text of `key`, each `{name}` of `parameters` written in, in one pass: a value is never read for placeholders
    /// itself (a device's serial or an address may hold braces). Foundation's `replacingOccurrences`, once per
    /// parameter, was most of the CPU a device row takes on the *Sito e dispositivo* page (perf, issue 13).
    public func text(_ key: String, _ language: Language, _ parameters: [String: String] = [:]) -> String {
        let text = strings[language]?[key] ?? strings[.en]?[key] ?? key
        guard !parameters.isEmpty else { return text }
        var written = ""
        var rest = Substring(text)
        while let open = rest.utf8.firstIndex(of: UInt8(ascii: "{")),
              let close = rest.utf8[open...].firstIndex(of: UInt8(ascii: "}")) {
            written += rest[..<open]
            let afterOpen = rest.utf8.index(after: open)
            guard let value = parameters[String(rest[afterOpen..<close])] else {
                // Not a placeholder of these: the brace stays, and what follows it is read again.
                written += "{"
                rest = rest[afterOpen...]
                continue
            }
            written += value
            rest = rest[rest.utf8.index(after: close)...]
        }
        return written + rest
    }
}
