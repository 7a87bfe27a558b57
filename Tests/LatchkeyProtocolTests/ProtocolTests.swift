import Foundation
import LatchkeyProtocol
import Testing

@Suite("Firmware versions")
struct FirmwareVersionTests {
    @Test(arguments: [
        ("V5.10.0", "V5.9.2"), ("V4.30.005", "V4.30.000"), ("V5.7.3 build 220112", "V5.7.2"), ("5.7.10", "V5.7.9"),
        ("V2.2.53", "V2.2.45"),
    ])
    func newerIsGreater(newer: String, older: String) throws {
        let newer = try #require(FirmwareVersion(newer))
        let older = try #require(FirmwareVersion(older))
        #expect(newer > older)
        #expect(!(older > newer))
    }

    @Test func trailingZerosAreEqual() throws {
        #expect(try #require(FirmwareVersion("V5.7")) == #require(FirmwareVersion("V5.7.0")))
    }

    @Test(arguments: ["", "build 1", "V", "Vx.1", "V1..2", "V99999999999.1"])
    func garbageIsNotAVersion(text: String) {
        #expect(FirmwareVersion(text) == nil)
    }
}

@Suite("Device password policy")
struct PasswordPolicyTests {
    @Test(arguments: ["Sicura2024", "abcd1234", "Ab!cdefg", "ZXCV-9876-asdf"])
    func accepts(password: String) throws {
        try PasswordPolicy.device.check(password)
    }

    @Test(arguments: [
        ("Ab1", PasswordPolicy.Violation.tooShort(minimum: 8)),
        ("Abcdefgh12345678x", .tooLong(maximum: 16)),
        ("abcdefghij", .tooFewCharacterKinds(required: 2)),
        ("12345678", .tooFewCharacterKinds(required: 2)),
        ("myAdmin123", .containsUsername("admin")),
        ("nimda2024X", .containsReversedUsername("admin")),
    ])
    func refuses(password: String, violation: PasswordPolicy.Violation) {
        #expect(throws: violation) { try PasswordPolicy.device.check(password) }
    }
}

@Suite("Wire coding")
struct WireCodingTests {
    struct Body: Codable { var mode: ResetMode; var name: String }

    func message(_ json: String) -> String? {
        do {
            _ = try WireCoding.makeDecoder().decode(Body.self, from: Data(json.utf8))
            return nil
        } catch let error as DecodingError {
            return WireCoding.describe(error)
        } catch {
            return nil
        }
    }

    @Test func messagesNameTheField() {
        #expect(message(#"{"mode": "on_site"}"#) == "Missing field 'name'.")
        #expect(message(#"{"mode": "sideways", "name": "x"}"#)?.contains("on_site, off_site") == true)
        #expect(message(#"{"mode": "on_site", "name": 5}"#) == "Field 'name' must be a string.")
        #expect(message("{nope") == "The body is not valid JSON.")
    }

    @Test func datesAreRFC3339() throws {
        let json = String(decoding: try WireCoding.makeEncoder().encode(["at": Date(timeIntervalSince1970: 0)]), as: UTF8.self)
        #expect(json == #"{"at":"1970-01-01T00:00:00Z"}"#)
    }
}
