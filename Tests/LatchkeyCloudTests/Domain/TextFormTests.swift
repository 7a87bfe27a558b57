import Foundation
@testable import LatchkeyClient
@testable import LatchkeyCloud
import Testing

/// Identifiers and times written and read by our own code must be exactly Foundation's text: clients, the database and
/// other nodes read them.
struct TextFormTests {
    @Test func anIdentifiersTextIsFoundationsBothWays() {
        let fixed = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                     UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)),
                     UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F")!]
        for uuid in fixed + (0..<10_000).map({ _ in UUID() }) {
            #expect(uuid.storedText == uuid.uuidString)
            #expect(UUID(storedText: uuid.storedText.lowercased()) == uuid)
        }
    }

    @Test func aTimesTextIsFoundationsISO8601() {
        let edges: [TimeInterval] = [
            0, 0.999_999, 59.5, 86_399.999, 86_400,
            951_782_400,            // 2000-02-29, a leap day in a century year
            951_868_799.75,         // its last second
            4_107_542_400,          // 2100-03-01, after a century's February with no 29th
            1_800_000_000.123_456, 253_402_300_799,  // 9999-12-31T23:59:59
            253_402_300_799.999,
            253_402_300_800,        // year 10000: Foundation's own text
            -1, -86_400.5,          // before 1970: Foundation's own text
        ]
        let random = (0..<20_000).map { _ in TimeInterval.random(in: 0..<253_402_300_800) }
        for seconds in edges + random {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(date.wireText == date.formatted(.iso8601), "\(seconds)")
        }
    }

    /// RFC 9562's version 7: the millisecond first, so that the stored text sorts by time; the rest random.
    @Test func aTimeOrderedIdentifierCarriesItsMillisecondAndSortsByIt() {
        let start = Date(timeIntervalSince1970: 1_796_000_000.123)
        let ids = (0..<1_000).map { UUID.timeOrdered(at: start + Double($0) * 0.002) }
        for id in ids {
            let text = id.storedText
            #expect(text[text.index(text.startIndex, offsetBy: 14)] == "7")
            #expect("89AB".contains(text[text.index(text.startIndex, offsetBy: 19)]))
        }
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0.storedText < $1.storedText })
        #expect(ids[0].storedText.hasPrefix(String(format: "%08X-%04X", 1_796_000_000_123 >> 16, 1_796_000_000_123 & 0xFFFF)))
        // Within one millisecond, 74 random bits tell them apart.
        let same = (0..<10_000).map { _ in UUID.timeOrdered(at: start) }
        #expect(Set(same).count == same.count)
    }

    /// A serial in a URL's path: as it is when it needs no escaping, else as Foundation escapes it (a `/` included).
    @Test func aSerialInAPathIsEscapedAsFoundationEscapesIt() {
        let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))
        let alphabet = Array("AZaz09-._~/ %?#é+")
        let serials = ["CAM-1", "NVR-WEB-1", "a/b c", "..", ""] + (0..<2_000).map { _ in
            String((0..<Int.random(in: 1...12)).map { _ in alphabet.randomElement()! })
        }
        for serial in serials {
            #expect(LatchkeyClient.pathComponent(serial) == serial.addingPercentEncoding(withAllowedCharacters: allowed))
        }
    }
}
