import Crypto
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

@Suite("Durations and countdowns")
struct TimeTextTests {
    @Test func durationsAsPeopleTypeThem() {
        #expect(TimeText.seconds("90s") == 90)
        #expect(TimeText.seconds("5m") == 300)
        #expect(TimeText.seconds("24h") == 86_400)
        #expect(TimeText.seconds("7d") == 604_800)
        #expect(TimeText.seconds("300") == 300)
        for bad in ["", "5x", "m", "-5m", "0"] { #expect(TimeText.seconds(bad) == nil, "\(bad)") }
    }

    @Test func countdowns() {
        #expect(TimeText.countdown(299) == "4:59")
        #expect(TimeText.countdown(86_399) == "23:59:59")
        #expect(TimeText.countdown(-3) == "0:00")
    }
}

@Suite("Sealing, proofs and grants")
struct SealAndGrantTests {
    @Test func onlyTheDeviceKeyOpensTheSealAndOnlyForItsRequest() throws {
        let device = Curve25519.KeyAgreement.PrivateKey()
        let request = UUID()
        let sealed = try PasswordSeal.seal("Nuova2026x", to: device.publicKey, requestId: request)
        #expect(!sealed.contains("Nuova2026x"))
        #expect(try PasswordSeal.open(sealed, with: device, requestId: request) == "Nuova2026x")
        #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(sealed, with: .init(), requestId: request) }
        #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(sealed, with: device, requestId: UUID()) }
        #expect(throws: PasswordSeal.Failure.malformed) { try PasswordSeal.open("short", with: device, requestId: request) }
    }

    @Test func grantsVerifyOnlyWithThePlatformKeyForTheirDeviceBeforeExpiry() async throws {
        let platform = Curve25519.Signing.PrivateKey()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let claims = ResetGrantClaims(requestId: UUID(), serial: "S1", nonce: "n", issuedAt: now, expiresAt: now + 120)
        let token = try await ResetGrant.sign(claims, with: platform)
        #expect(try await ResetGrant.verify(token, platformKey: platform.publicKey, serial: "S1", now: now + 60) == claims)
        await #expect(throws: ResetGrant.Failure.expired) { try await ResetGrant.verify(token, platformKey: platform.publicKey, serial: "S1", now: now + 120) }
        await #expect(throws: ResetGrant.Failure.wrongDevice) { try await ResetGrant.verify(token, platformKey: platform.publicKey, serial: "S2", now: now) }
        await #expect(throws: ResetGrant.Failure.self) { try await ResetGrant.verify(token, platformKey: Curve25519.Signing.PrivateKey().publicKey, serial: "S1", now: now) }
    }

    @Test func proofsAndReceiptsVerifyOnlyWithTheDeviceKey() throws {
        let device = Curve25519.Signing.PrivateKey()
        let proof = try ProximityProof.sign(serial: "S1", nonce: "n1", issuedAt: Date(), with: device)
        #expect(proof.isSigned(by: device.publicKey))
        var altered = proof
        altered.nonce = "n2"
        #expect(!altered.isSigned(by: device.publicKey))
        #expect(!proof.isSigned(by: Curve25519.Signing.PrivateKey().publicKey))
        let receipt = try ResetReceipt.sign(requestId: UUID(), serial: "S1", nonce: "n1", appliedAt: Date(), with: device)
        #expect(receipt.isSigned(by: device.publicKey))
    }

    @Test func sadpProbesRoundTripAndJunkIsRefused() throws {
        let probe = SADP.Probe(uuid: "ABC")
        #expect(SADP.Probe(xml: Data(probe.xml.utf8)) == probe)
        #expect(SADP.Probe(xml: Data("<Probe><Uuid>x</Uuid><Types>update</Types></Probe>".utf8)) == nil)
        #expect(SADP.Probe(xml: Data("<Probe><Uuid>x</Uuid><Types>inquiry</Types><Deep><Er/></Deep></Probe>".utf8)) == nil)
        #expect(SADP.Probe(xml: Data(repeating: 0x20, count: 5000)) == nil)
    }
}
