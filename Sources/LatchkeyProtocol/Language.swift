import Foundation

/// The languages Latchkey speaks to people: the portal's pages and the e-mails an account receives.
public enum Language: String, WireEnum {
    case en
    case it

    public var other: Language { self == .en ? .it : .en }

    /// The first supported language in an `Accept-Language` header (or a `LANG` such as `it_IT.UTF-8`), by
    /// preference; English otherwise.
    public static func negotiate(_ header: String?) -> Language {
        guard let header else { return .en }
        let ranked = header.split(separator: ",").compactMap { part -> (Language, Double)? in
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let tag = pieces.first?.lowercased().split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == "." }).first,
                let language = Language(rawValue: String(tag))
            else { return nil }
            let quality = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return (language, quality)
        }
        return ranked.max { $0.1 < $1.1 }?.0 ?? .en
    }
}
