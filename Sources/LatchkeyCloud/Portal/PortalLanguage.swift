import Foundation
import LatchkeyProtocol

/// The portal's languages. Every string a page shows comes from one catalogue per language.
public enum PortalLanguage: String, CaseIterable, Sendable {
    case en
    case it

    var other: PortalLanguage { self == .en ? .it : .en }

    /// The first supported language in an `Accept-Language` header, by preference; English otherwise.
    static func negotiate(_ header: String?) -> PortalLanguage {
        guard let header else { return .en }
        let ranked = header.split(separator: ",").compactMap { part -> (PortalLanguage, Double)? in
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = pieces.first?.lowercased().split(separator: "-").first,
                let language = PortalLanguage(rawValue: String(tag))
            else { return nil }
            let quality = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return (language, quality)
        }
        return ranked.max { $0.1 < $1.1 }?.0 ?? .en
    }
}

/// The two catalogues, loaded once: key → text, with `{name}` placeholders.
public struct PortalCatalog: Sendable {
    public let strings: [PortalLanguage: [String: String]]

    public static func bundled() throws -> PortalCatalog {
        var strings: [PortalLanguage: [String: String]] = [:]
        for language in PortalLanguage.allCases {
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

    public func text(_ key: String, _ language: PortalLanguage, _ parameters: [String: String] = [:]) -> String {
        var text = strings[language]?[key] ?? strings[.en]?[key] ?? key
        for (name, value) in parameters { text = text.replacingOccurrences(of: "{\(name)}", with: value) }
        return text
    }
}
