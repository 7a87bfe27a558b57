import Foundation

// The text forms of identifiers and times that every response, page and statement writes or reads. Foundation's own
// (`uuidString`, `UUID(uuidString:)`, `formatted(.iso8601)`) go through `snprintf`, `sscanf` and a format style, 0.7 to
// 1 µs each: measured with `perf`, libc's formatting alone was 1.7 % of the server's CPU in a complete reset flow and
// 1 % of a hot read (issue 13's note). Each is checked against Foundation's, value for value, by `TextFormTests`.

extension UUID {
    /// Reads the text a UUID is stored as (`E621E1F8-C36C-495A-93FC-0C247A3E6E5F`, either case); nil for anything else.
    init?(storedText text: String) {
        var text = text
        let uuid: uuid_t? = text.withUTF8 { utf8 in
            guard utf8.count == 36 else { return nil }
            var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let complete = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
                var index = 0
                var byte = 0
                while index < 36 {
                    if index == 8 || index == 13 || index == 18 || index == 23 {
                        guard utf8[index] == UInt8(ascii: "-") else { return false }
                        index += 1
                        continue
                    }
                    guard let high = Self.hexDigit(utf8[index]), let low = Self.hexDigit(utf8[index + 1]) else { return false }
                    out[byte] = high << 4 | low
                    byte += 1
                    index += 2
                }
                return true
            }
            return complete ? bytes : nil
        }
        guard let uuid else { return nil }
        self.init(uuid: uuid)
    }

    /// `uuidString`'s text (upper-case hex, `E621E1F8-C36C-495A-93FC-0C247A3E6E5F`), written here: Foundation formats it
    /// with `snprintf`, a microsecond's fraction that every identifier in a response, a page or a bind paid.
    var storedText: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var index = 0
                for (position, byte) in bytes.enumerated() {
                    if position == 4 || position == 6 || position == 8 || position == 10 {
                        out[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    out[index] = Self.upperHex[Int(byte >> 4)]
                    out[index + 1] = Self.upperHex[Int(byte & 0x0f)]
                    index += 2
                }
                return index
            }
        }
    }

    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)

    private static func hexDigit(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Date {
    /// `formatted(.iso8601)`'s text (`2026-11-28T14:05:09Z`: UTC, whole seconds, the fraction dropped), written here from
    /// `UTCTime`'s civil fields; Foundation's text for a time before 1970 or from the year 10000 on.
    var wireText: String {
        guard UTCTime.civil.contains(timeIntervalSince1970.rounded(.down)) else { return formatted(.iso8601) }
        let time = UTCTime(self)
        return String(unsafeUninitializedCapacity: 20) { out in
            func digits(_ value: Int, _ count: Int, at start: Int) {
                var value = value
                for offset in stride(from: count - 1, through: 0, by: -1) {
                    out[start + offset] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            digits(time.year, 4, at: 0)
            out[4] = UInt8(ascii: "-")
            digits(time.month, 2, at: 5)
            out[7] = UInt8(ascii: "-")
            digits(time.day, 2, at: 8)
            out[10] = UInt8(ascii: "T")
            digits(time.hour, 2, at: 11)
            out[13] = UInt8(ascii: ":")
            digits(time.minute, 2, at: 14)
            out[16] = UInt8(ascii: ":")
            digits(time.second, 2, at: 17)
            out[19] = UInt8(ascii: "Z")
            return 20
        }
    }
}

/// A time's fields in UTC, the one reading behind the times that responses, pages and e-mails write. From 1970 to the
/// year 9999 they come from the civil calendar (days to year, month and day as in Howard Hinnant's `civil_from_days`);
/// outside it, from a gregorian calendar made once. A `DateFormatter` or `ISO8601DateFormatter` made per call (ICU
/// underneath) was a tenth of the server's CPU on a list of 100 notifications (perf, issue 13).
struct UTCTime {
    /// The times, in whole seconds since 1970, that the civil calendar reads here: up to the year 10000.
    static let civil: Range<TimeInterval> = 0..<253_402_300_800

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    let year, month, day, hour, minute, second: Int

    init(_ date: Date) {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard Self.civil.contains(seconds) else {
            let fields = Self.calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            (year, month, day) = (fields.year ?? 0, fields.month ?? 0, fields.day ?? 0)
            (hour, minute, second) = (fields.hour ?? 0, fields.minute ?? 0, fields.second ?? 0)
            return
        }
        let (days, time) = Int(seconds).quotientAndRemainder(dividingBy: 86_400)
        let shifted = days + 719_468
        let era = shifted / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        (hour, minute, second) = (time / 3_600, time / 60 % 60, time % 60)
    }

    /// `value` in at least `width` digits, zeros first.
    static func padded(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
