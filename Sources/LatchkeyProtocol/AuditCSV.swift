import Foundation

/// RFC 4180 CSV of audit lines. A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, return first)
/// starts with an apostrophe, so a name typed by a stranger stays text (OWASP "CSV injection").
public enum AuditCSV {
    /// The first line, CRLF included.
    public static let header = ["sequence", "at", "actor_id", "actor", "site_id", "device", "request_id", "action", "outcome", "detail"]
        .joined(separator: ",") + "\r\n"

    public static func document(_ entries: [API.AuditEntry]) -> String {
        header + rows(entries)
    }

    /// The lines of `entries`, each ending in CRLF, without the header.
    public static func rows(_ entries: [API.AuditEntry]) -> String {
        entries.map { entry in
            [
                String(entry.sequence), entry.at.formatted(.iso8601), entry.actorId?.uuidString ?? "", entry.actorName ?? "",
                entry.siteId?.uuidString ?? "", entry.deviceSerial ?? "", entry.requestId?.uuidString ?? "", entry.action,
                entry.outcome, entry.detail ?? "",
            ].map(cell).joined(separator: ",") + "\r\n"
        }.joined()
    }

    public static func cell(_ text: String) -> String {
        var text = text
        if let first = text.first, "=+-@\t\r".contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
