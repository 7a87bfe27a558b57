import Foundation

/// A device firmware version as the field writes it (`V5.7.3 build 220112`), ordered by its numbers, so that
/// `V5.10.0` is newer than `V5.9.2` — string order would say the opposite.
public struct FirmwareVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let components: [Int]
    public let description: String

    /// Reads `V5.10.0`, `v4.30.000`, `5.7.3 build 220112`; nil when no number leads the text.
    public init?(_ text: String) {
        var rest = text.withoutSurroundingSpaces
        if rest.first == "V" || rest.first == "v" { rest = rest.dropFirst() }
        let numeric = rest.prefix { $0.isNumber || $0 == "." }
        let parts = numeric.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.count <= 6 else { return nil }
        var components: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 9, let value = Int(part) else { return nil }
            components.append(value)
        }
        self.components = components
        self.description = text
    }

    public static func < (lhs: FirmwareVersion, rhs: FirmwareVersion) -> Bool {
        let count = max(lhs.components.count, rhs.components.count)
        for index in 0..<count {
            let left = index < lhs.components.count ? lhs.components[index] : 0
            let right = index < rhs.components.count ? rhs.components[index] : 0
            if left != right { return left < right }
        }
        return false
    }

    public static func == (lhs: FirmwareVersion, rhs: FirmwareVersion) -> Bool {
        !(lhs < rhs) && !(rhs < lhs)
    }

    public func hash(into hasher: inout Hasher) {
        var trimmed = components
        while trimmed.last == 0 { trimmed.removeLast() }
        hasher.combine(trimmed)
    }
}

extension StringProtocol {
    /// The text without the spaces and tabs around it: what `trimmingCharacters(in: .whitespaces)` gives, without
    /// Foundation's character sets, which cost more than the rest of reading a firmware version (measured on every device
    /// a list shows: each says whether it can be reset).
    public var withoutSurroundingSpaces: SubSequence {
        func isSpace(_ character: Character) -> Bool {
            character == " " || character == "\t" || character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .spaceSeparator }
        }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        return self[first...last]
    }
}
