import Foundation
import LatchkeyProtocol

/// An e-mail address as it may appear in a header and on `sendmail`'s command line: one `@`, printable ASCII, none of
/// the characters that end an address or start an option. What is not such an address is never handed on.
struct MailAddress: Sendable, Equatable {
    let address: String
    /// Shown beside the address; any text, encoded so that it cannot add a header.
    let name: String?

    init?(_ address: String, name: String? = nil) {
        let forbidden = Set("()<>[]:;,\\\"")
        guard address.count <= 254, !address.hasPrefix("-"), address.filter({ $0 == "@" }).count == 1,
            address.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }), !address.contains(where: forbidden.contains),
            let at = address.firstIndex(of: "@"), at != address.startIndex, address.index(after: at) != address.endIndex
        else { return nil }
        self.address = address
        self.name = name
    }

    /// `=?UTF-8?B?…?= <address>`, or the bare address.
    var header: String {
        guard let name, !MailMessage.oneLine(name).isEmpty else { return address }
        return "\(MailMessage.encodedWords(name)) <\(address)>"
    }
}

/// An e-mail as it goes to `sendmail`: RFC 5322 headers over a MIME `multipart/alternative` body, plain text and HTML,
/// each part base64 (no line too long, no line a lone dot). Header values are our own words, the addresses checked
/// above, or RFC 2047 encoded words: no name or subject, whatever it holds, can add a header or a recipient.
struct MailMessage: Sendable {
    var from: MailAddress
    var to: MailAddress
    var subject: String
    var text: String
    var html: String
    var language: Language
    var date: Date
    /// `<id@host>`, unique per mail: a mail sent twice (a crash between sending and marking) is seen as one.
    var messageID: String

    /// Lines end with LF, as the `sendmail` interface reads them.
    func rendered(boundary: String = "latchkey-" + UUID().uuidString) -> String {
        let headers = [
            "From: \(from.header)",
            "To: \(to.header)",
            "Subject: \(Self.encodedWords(subject))",
            "Date: \(Self.dateHeader(date))",
            "Message-ID: \(messageID)",
            "MIME-Version: 1.0",
            "Content-Language: \(language.rawValue)",
            "Auto-Submitted: auto-generated",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        var lines = headers + [""]
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            lines += ["--\(boundary)", "Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", ""]
            lines += Self.base64Lines(Data(body.utf8))
        }
        lines += ["--\(boundary)--", ""]
        return lines.joined(separator: "\n")
    }

    /// The text on one line: controls (CR and LF among them), direction overrides and line separators become spaces.
    static func oneLine(_ text: String) -> String {
        let scalars = text.unicodeScalars.map { scalar -> Unicode.Scalar in
            scalar.rewritesDisplay || scalar.value == 0x2028 || scalar.value == 0x2029 ? " " : scalar
        }
        return String(String.UnicodeScalarView(scalars)).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// RFC 2047 `B` encoded words of at most 75 characters, folded onto continuation lines.
    static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk = ""
        for character in oneLine(text) {
            if chunk.utf8.count + String(character).utf8.count > 45 {
                words.append(chunk)
                chunk = ""
            }
            chunk.append(character)
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0.utf8).base64EncodedString())?=" }.joined(separator: "\n ")
    }

    static func base64Lines(_ data: Data) -> [String] {
        let encoded = data.base64EncodedString()
        return stride(from: 0, to: encoded.count, by: 76).map { start in
            let from = encoded.index(encoded.startIndex, offsetBy: start)
            return String(encoded[from..<(encoded.index(from, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex)])
        }
    }

    /// RFC 5322's date: `Fri, 27 Nov 2026 05:15:42 +0000`, in English whatever the reader's language.
    static func dateHeader(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}
