import Foundation

/// Durations as people type and read them, shared by the service's settings, the CLI and the portal.
public enum TimeText {
    /// `90s`, `5m`, `8h`, `7d`, or plain seconds; nil for anything else or for zero.
    public static func seconds(_ text: String) -> TimeInterval? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        let value: Double? =
            if let unit = text.last, let multiplier = units[unit] { Double(text.dropLast()).map { $0 * multiplier } } else { Double(text) }
        guard let value, value > 0 else { return nil }
        return value
    }

    /// A countdown: `4:59`, `23:59:59`; never negative.
    public static func countdown(_ seconds: Int) -> String {
        let seconds = max(0, seconds)
        if seconds >= 3600 { return String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60) }
        return String(format: "%d:%02d", seconds / 60, seconds % 60)
    }
}
