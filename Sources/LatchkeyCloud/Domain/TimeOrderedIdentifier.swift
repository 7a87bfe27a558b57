import Foundation

extension UUID {
    /// A version 7 identifier (RFC 9562): the time in milliseconds, then 74 random bits. New rows keyed so land at
    /// the end of their table's key index, where the rows written just before them are, instead of on a random page of
    /// it: a SQLite commit writes each page it changed to the log, so random keys cost a page each.
    static func timeOrdered(at date: Date) -> UUID {
        var random = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var uuid = unsafeBitCast((random.next() as UInt64, random.next() as UInt64), to: uuid_t.self)
        withUnsafeMutableBytes(of: &uuid) { bytes in
            for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
            bytes[6] = 0x70 | (bytes[6] & 0x0f)
            bytes[8] = 0x80 | (bytes[8] & 0x3f)
        }
        return UUID(uuid: uuid)
    }
}
