import Crypto
import Foundation
import LatchkeyProtocol
import Testing

@Suite("Firmware versions", .timeLimit(.minutes(3)))
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

    /// The spaces taken off a model or a version are the ones Foundation's `.whitespaces` names, no more, no fewer.
    @Test(arguments: ["  V5.7.3 ", "\tDS-2CD2143G2-I\t", "\u{00A0}V5.7\u{2003}", "\nV5.7\n", "   ", "", "DS 7608", "\u{00A0}"])
    func spacesAroundAreThoseFoundationTrims(text: String) {
        #expect(String(text.withoutSurroundingSpaces) == text.trimmingCharacters(in: .whitespaces))
    }
}

@Suite("Device password policy", .timeLimit(.minutes(3)))
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

@Suite("Wire coding", .timeLimit(.minutes(3)))
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

@Suite("Base64url", .timeLimit(.minutes(3)))
struct Base64URLTests {
    /// What the one-pass decoder replaced: NSString's checks and replacements, then Foundation's decoder.
    private func decodedAsBefore(_ text: String) -> Data? {
        guard !text.contains("="), !text.contains("+"), !text.contains("/") else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    @Test func decodesWhatItEncodesAndRefusesWhatIsNotBase64URL() {
        var generator = SystemRandomNumberGenerator()
        for count in 0..<70 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == Data(bytes))
        }
        let alphabet = Array("ABCxyz019-_+/=. é\u{301}\n")
        var texts = ["", "A", "AA", "AAA", "AAAA", "AB==", "A+B/", "QUJD", "QUJ", "QU", "Q", "-_-_", "é", "QUJD\u{0}", " QUJD"]
        for _ in 0..<2_000 { texts.append(String((0..<Int.random(in: 0...9)).map { _ in alphabet.randomElement()! })) }
        for text in texts {
            #expect(Base64URL.decode(text) == decodedAsBefore(text), "\(text.debugDescription)")
        }
    }
}

@Suite("Durations and countdowns", .timeLimit(.minutes(3)))
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

@Suite("Sealing, proofs and grants", .timeLimit(.minutes(3)))
struct SealAndGrantTests {
    @Test func onlyTheDeviceKeyOpensTheSealAndOnlyForItsRequest() throws {
        let device = Curve25519.KeyAgreement.PrivateKey()
        let request = UUID()
        let sealed = try PasswordSeal.seal("Nuova2026x", to: device.publicKey, requestId: request, serial: "NVR-1")
        #expect(!sealed.contains("Nuova2026x"))
        #expect(sealed.hasPrefix("v2."))
        #expect(try PasswordSeal.open(sealed, with: device, requestId: request, serial: "NVR-1") == "Nuova2026x")
        #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(sealed, with: .init(), requestId: request, serial: "NVR-1") }
        #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(sealed, with: device, requestId: UUID(), serial: "NVR-1") }
        #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(sealed, with: device, requestId: request, serial: "NVR-2") }
        #expect(throws: PasswordSeal.Failure.malformed) { try PasswordSeal.open("short", with: device, requestId: request, serial: "NVR-1") }
    }

    /// The suite is RFC 9180's DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM: appendix A.1.1's base-mode
    /// vector (its recipient key, encapsulated key, info, AAD and first ciphertext) opens to its plaintext.
    @Test func theSuiteOpensRFC9180AppendixA11() throws {
        func hex(_ text: String) -> Data {
            Data(stride(from: 0, to: text.count, by: 2).map { UInt8(text.dropFirst($0).prefix(2), radix: 16)! })
        }
        let skRm = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: hex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"))
        #expect(skRm.publicKey.rawRepresentation == hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"))
        let opened = try PasswordSeal.open(
            encapsulatedKey: hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"),
            ciphertext: hex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"),
            info: hex("4f6465206f6e2061204772656369616e2055726e"), aad: hex("436f756e742d30"), with: skRm)
        #expect(opened == hex("4265617574792069732074727574682c20747275746820626561757479"))
        // The same vector's ciphertext in Latchkey's layout: it opens only with the info it was sealed under.
        let laidOut = "v2." + Base64URL.encode(hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
            + hex("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"))
        #expect(throws: PasswordSeal.Failure.cannotOpen) { try PasswordSeal.open(laidOut, with: skRm, requestId: UUID(), serial: "NVR-1") }
    }

    /// A seal from before the suite changed (ChaCha20-Poly1305, no prefix) is named as such, so the device can say what to do.
    @Test func aSealOfTheRetiredSuiteIsRecognised() throws {
        let device = Curve25519.KeyAgreement.PrivateKey()
        let request = UUID()
        var sender = try HPKE.Sender(
            recipientKey: device.publicKey, ciphersuite: HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .chaChaPoly),
            info: Data("latchkey/password-reset/v1/\(request.uuidString.lowercased())".utf8))
        let old = Base64URL.encode(sender.encapsulatedKey + (try sender.seal(Data("Nuova2026x".utf8))))
        #expect(throws: PasswordSeal.Failure.retiredSuite) { try PasswordSeal.open(old, with: device, requestId: request, serial: "NVR-1") }
        #expect(!PasswordSeal.isWellFormed(old))
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

@Suite("Text printed on a terminal", .timeLimit(.minutes(3)))
struct TerminalTextTests {
    @Test func controlCharactersFromOthersAreDropped() {
        #expect(TerminalText.printable("Bar\u{1B}[2J\u{1B}]0;pwned\u{07} Centrale") == "Bar[2J]0;pwned Centrale")
        #expect(TerminalText.printable("NVR\rFAKE") == "NVRFAKE")
        #expect(TerminalText.printable("abc\u{202E}fed") == "abcfed")
        #expect(TerminalText.printable("MODEL\tTYPE\nDS-7608NI-K2\tnvr") == "MODEL\tTYPE\nDS-7608NI-K2\tnvr")
        #expect(TerminalText.printable("Città — Caffè") == "Città — Caffè")
    }
}

