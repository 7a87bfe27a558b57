import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// The API's answers written in one pass read as Foundation's `JSONEncoder` (`WireCoding`) wrote them: the same values
/// under the same keys, and the same value back when decoded.
@Suite("Answers' JSON", .timeLimit(.minutes(2)))
struct ResponseJSONTests {
    /// Both encodings, read back as JSON values and compared (an object's keys may come in another order).
    func expectSameJSON<T: Encodable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ours = Data(try ResponseJSON.bytes(value))
        let foundation = try WireCoding.makeEncoder().encode(value)
        #expect(try Self.canonical(ours) == Self.canonical(foundation), "\(String(decoding: ours, as: UTF8.self)) ≠ \(String(decoding: foundation, as: UTF8.self))",
                sourceLocation: sourceLocation)
    }

    /// The JSON read and written again with sorted keys: the same values give the same bytes.
    static func canonical(_ json: Data) throws -> Data {
        try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]),
                                   options: [.sortedKeys, .fragmentsAllowed])
    }

    func expectRoundTrip<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expectSameJSON(value, sourceLocation: sourceLocation)
        #expect(try WireCoding.makeDecoder().decode(T.self, from: Data(ResponseJSON.bytes(value))) == value, sourceLocation: sourceLocation)
    }

    @Test func everyAnswerReadsAsFoundationWroteIt() throws {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        // Text that must be escaped: quotes, backslashes, every control character, and more than ASCII.
        let awkward = "Bar \"Centrale\" \\ C:\\ \u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F} / Città 🎥 \u{2028}"
        let authorization = API.SiteAuthorization(siteId: UUID(), installerId: UUID(), installerEmail: "marco@example.com",
                                                  installerName: awkward, permissions: [.view, .passwordReset], expiresAt: now + 3600,
                                                  createdAt: now)
        try expectRoundTrip(API.Device(serial: "NVR-1", model: "DS-7608NI-K2", deviceType: .nvr, firmware: "V4.62.200", siteId: UUID(),
                                       online: true, compatible: false))
        try expectRoundTrip([API.Device(serial: awkward, model: "m", deviceType: .camera, firmware: "", siteId: nil, online: false,
                                        compatible: true)])
        try expectRoundTrip(API.PasswordReset(id: UUID(), deviceSerial: "NVR-1", siteId: UUID(), installerId: UUID(), mode: .onSite,
                                              status: .approved, createdAt: now, expiresAt: now + 300, ownerEmailMasked: "lm...@gmail.com",
                                              reminder: awkward))
        try expectRoundTrip(API.Site(id: UUID(), name: awkward, address: nil, ownerId: UUID(), createdAt: now, authorizations: [authorization]))
        try expectRoundTrip(API.Site(id: UUID(), name: "Negozio", address: "Via Roma 1", ownerId: UUID(), createdAt: now))
        try expectRoundTrip([authorization, authorization])
        try expectRoundTrip([API.Device]())
        // Escapes first, last, alone, one after another; no text at all.
        try expectSameJSON(["\"", "\"edge\\", "\n\n", "", "é\"é", "plain"])
        try expectSameJSON(["b": 2, "a": 1] as [String: Int])
        try expectSameJSON([1.5, -0.25, 1e-7, 3] as [Double])
        try expectSameJSON([URL(string: "https://example.com/a?b=c")!])
        try expectSameJSON(Data([0, 1, 2, 250]))
        try expectSameJSON([Int64.min, Int64.max] as [Int64])
        try expectSameJSON([nil, "x"] as [String?])
    }

    /// A number JSON cannot hold is refused, as Foundation refuses it, naming where it was.
    @Test func aNumberJSONCannotHoldIsRefusedWithItsPlace() throws {
        do {
            _ = try ResponseJSON.bytes(["readings": [1, Double.nan]])
            Issue.record("NaN was written")
        } catch EncodingError.invalidValue(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["readings", "Index 1"])
        }
    }

    /// Times as `.iso8601` writes them, fractions of a second included.
    @Test func timesAsFoundationWritesThem() throws {
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_709_164_799.999), Date(timeIntervalSince1970: 1_795_000_000.5)]
        dates += (0..<300).map { _ in Date(timeIntervalSince1970: Double.random(in: 0..<4_102_444_800)) }
        for date in dates { try expectSameJSON(["at": date]) }
    }

    /// A value that keeps a nested container while its parent goes on cannot be written in one pass: Foundation's encoder
    /// writes it instead, so it still encodes, and the same.
    @Test func whatOnePassCannotWriteFoundationDoes() throws {
        struct Interleaved: Encodable {
            enum Keys: String, CodingKey { case inner, after }
            enum InnerKeys: String, CodingKey { case value }
            func encode(to encoder: any Encoder) throws {
                var outer = encoder.container(keyedBy: Keys.self)
                var inner = outer.nestedContainer(keyedBy: InnerKeys.self, forKey: .inner)
                try outer.encode("later", forKey: .after)
                try inner.encode(1, forKey: .value)
            }
        }
        #expect(throws: JSONStream.OnePassImpossible.self) { try ResponseJSON.bytes(Interleaved()) }
        let body = try ResponseJSON.body(Interleaved())
        #expect(try Self.canonical(Data(body.readableBytesView)) == Self.canonical(WireCoding.makeEncoder().encode(Interleaved())))
    }
}
