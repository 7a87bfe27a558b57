import Foundation

/// The one JSON dialect of Latchkey: camelCase keys, RFC 3339 times.
public enum WireCoding {
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Turns a `DecodingError` into a sentence a person can act on, naming the field.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let names = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
            return names.isEmpty ? "the body" : "field '\(names.joined(separator: "."))'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "Missing field '\(key.stringValue)'\(parent)."
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath).capitalizedFirst) must be \(describe(type))."
        case .valueNotFound(_, let context):
            return "\(path(context.codingPath).capitalizedFirst) must not be null."
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "The body is not valid JSON." }
            return "\(path(context.codingPath).capitalizedFirst): \(context.debugDescription)."
        @unknown default:
            return "The body could not be read."
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is [Any].Type: "a list"
        default: "an object"
        }
    }
}

extension String {
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
