import Foundation
import HTTPTypes
import Hummingbird
import LatchkeyProtocol
import NIOCore

/// The API's answers as JSON, written into the response's bytes while each value encodes itself.
///
/// Foundation's `JSONEncoder` first builds a tree of every value, with a dynamic cast at each to find dates and
/// dictionaries, then writes it: a tenth of the server's CPU for listing a site's devices or reading a request (perf,
/// issue 13). The dialect is `WireCoding`'s — camelCase keys, RFC 3339 times as `.iso8601` writes them — with an
/// object's keys in the order the type encodes them rather than sorted (JSON objects are unordered). A value that
/// encodes itself in a way one pass cannot write (a nested container kept while its parent goes on, a super encoder)
/// is encoded by Foundation's instead, so every value still encodes.
public struct ResponseJSON: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let buffer = try Self.body(value)
        var headers = HTTPFields()
        headers.reserveCapacity(4)
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.contentLength] = String(buffer.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
    }

    /// The value's JSON, written in one pass when it can be, else by Foundation's encoder.
    static func body(_ value: some Encodable) throws -> ByteBuffer {
        do {
            return ByteBuffer(bytes: try bytes(value))
        } catch is JSONStream.OnePassImpossible {
            return ByteBuffer(bytes: try WireCoding.makeEncoder().encode(value))
        }
    }

    /// The value's JSON; throws `JSONStream.OnePassImpossible` for a value only Foundation's encoder can write.
    static func bytes(_ value: some Encodable) throws -> [UInt8] {
        let stream = JSONStream()
        try stream.write(value, in: nil, at: nil)
        guard !stream.impossible else { throw JSONStream.OnePassImpossible() }
        return stream.bytes
    }
}

/// The bytes written so far and which value is being written: only the innermost open value may write, which is
/// how a synthesized `encode(to:)` goes.
final class JSONStream {
    struct OnePassImpossible: Error {}

    var bytes: [UInt8] = []
    /// How many values are being written, one inside the other.
    var depth = 0
    /// Set when a value asked for something one pass cannot write; the whole value is then written by Foundation.
    var impossible = false

    init() { bytes.reserveCapacity(1024) }

    /// Writes `value`, a member of `parent` under `key` (both nil for the value answered).
    func write<T: Encodable>(_ value: T, in parent: JSONValueEncoder?, at key: (any CodingKey)?) throws {
        if T.self == String.self { return string(value as! String) }
        if T.self == UUID.self { return string((value as! UUID).storedText) }
        if T.self == Date.self { return string((value as! Date).wireText) }
        if T.self == URL.self { return string((value as! URL).absoluteString) }
        if T.self == Data.self { return string((value as! Data).base64EncodedString()) }
        let encoder = JSONValueEncoder(stream: self, parent: parent, key: key, depth: depth + 1)
        depth += 1
        defer { depth -= 1 }
        try value.encode(to: encoder)
        switch encoder.shape {
        case .nothing: bytes += [UInt8(ascii: "{"), UInt8(ascii: "}")]  // as Foundation writes a value that encodes nothing
        case .object: bytes.append(UInt8(ascii: "}"))
        case .array: bytes.append(UInt8(ascii: "]"))
        case .single(let wrote): if !wrote { literal("null") }
        }
    }

    func checkInnermost(_ encoder: JSONValueEncoder) throws {
        guard encoder.depth == depth, !impossible else {
            impossible = true
            throw OnePassImpossible()
        }
    }

    func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        defer { bytes.append(UInt8(ascii: "\"")) }
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            return bytes.append(contentsOf: text.utf8)
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: bytes.append(byte)
            }
        }
    }

    /// A number, `null`, `true` or `false`, as written.
    func literal(_ text: String) { bytes.append(contentsOf: text.utf8) }

    func double(_ value: Double, at codingPath: @autoclosure () -> [any CodingKey]) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath(), debugDescription: "\(value) is not a JSON number."))
        }
        literal("\(value)")
    }

    func bool(_ value: Bool) { literal(value ? "true" : "false") }
}

/// The encoder one value writes itself through.
final class JSONValueEncoder: Encoder {
    enum Shape { case nothing, object, array, single(wrote: Bool) }

    let stream: JSONStream
    /// The value this one is a member of, and under which key: the coding path, put together only when asked for.
    let parent: JSONValueEncoder?
    let key: (any CodingKey)?
    let depth: Int
    var shape = Shape.nothing
    /// Whether the object or array written has a first member yet (a comma goes before every other).
    var hasMembers = false
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(stream: JSONStream, parent: JSONValueEncoder?, key: (any CodingKey)?, depth: Int) {
        self.stream = stream
        self.parent = parent
        self.key = key
        self.depth = depth
    }

    var codingPath: [any CodingKey] { (parent?.codingPath ?? []) + (key.map { [$0] } ?? []) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        begin(.object, with: UInt8(ascii: "{"))
        return KeyedEncodingContainer(JSONObjectWriter<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        begin(.array, with: UInt8(ascii: "["))
        return JSONArrayWriter(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        begin(.single(wrote: false), with: nil)
        return JSONSingleWriter(encoder: self)
    }

    /// The value starts as `shape`, with its opening bracket; asked again for the same shape, it goes on with it; asked
    /// for another, it cannot be written in one pass.
    private func begin(_ wanted: Shape, with bracket: UInt8?) {
        switch (shape, wanted) {
        case (.nothing, _):
            shape = wanted
            if let bracket { stream.bytes.append(bracket) }
        case (.object, .object), (.array, .array), (.single, .single): break
        default: stream.impossible = true
        }
    }

    /// Before each member of an object or an array.
    func member() throws {
        try stream.checkInnermost(self)
        if hasMembers { stream.bytes.append(UInt8(ascii: ",")) }
        hasMembers = true
    }

    func single() throws {
        try stream.checkInnermost(self)
        guard case .single(false) = shape else {
            stream.impossible = true
            throw JSONStream.OnePassImpossible()
        }
        shape = .single(wrote: true)
    }
}

struct JSONObjectWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: JSONValueEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func key(_ key: Key) throws {
        try encoder.member()
        encoder.stream.string(key.stringValue)
        encoder.stream.bytes.append(UInt8(ascii: ":"))
    }

    mutating func encodeNil(forKey key: Key) throws { try self.key(key); encoder.stream.literal("null") }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try self.key(key); encoder.stream.bool(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { try self.key(key); encoder.stream.string(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        try self.key(key)
        try encoder.stream.double(value, at: codingPath + [key])
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        try self.key(key)
        try encoder.stream.double(Double(value), at: codingPath + [key])
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try self.key(key); encoder.stream.literal(String(value)) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try self.key(key)
        try encoder.stream.write(value, in: encoder, at: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        encoder.stream.impossible = true
        return encoder.container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        encoder.stream.impossible = true
        return encoder.unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder {
        encoder.stream.impossible = true
        return encoder
    }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.stream.impossible = true
        return encoder
    }
}

struct JSONArrayWriter: UnkeyedEncodingContainer {
    let encoder: JSONValueEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count = 0

    private mutating func element() throws {
        try encoder.member()
        count += 1
    }

    mutating func encodeNil() throws { try element(); encoder.stream.literal("null") }
    mutating func encode(_ value: Bool) throws { try element(); encoder.stream.bool(value) }
    mutating func encode(_ value: String) throws { try element(); encoder.stream.string(value) }
    mutating func encode(_ value: Double) throws { try element(); try encoder.stream.double(value, at: codingPath) }
    mutating func encode(_ value: Float) throws { try element(); try encoder.stream.double(Double(value), at: codingPath) }
    mutating func encode(_ value: Int) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int8) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int16) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int32) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int64) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt8) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt16) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt32) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt64) throws { try element(); encoder.stream.literal(String(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try element()
        try encoder.stream.write(value, in: encoder, at: ArrayIndex(count - 1))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        encoder.stream.impossible = true
        return encoder.container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        encoder.stream.impossible = true
        return self
    }
    mutating func superEncoder() -> any Encoder {
        encoder.stream.impossible = true
        return encoder
    }

    struct ArrayIndex: CodingKey {
        let intValue: Int?
        var stringValue: String { "Index \(intValue ?? 0)" }
        init(_ index: Int) { intValue = index }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }
}

struct JSONSingleWriter: SingleValueEncodingContainer {
    let encoder: JSONValueEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { try encoder.single(); encoder.stream.literal("null") }
    mutating func encode(_ value: Bool) throws { try encoder.single(); encoder.stream.bool(value) }
    mutating func encode(_ value: String) throws { try encoder.single(); encoder.stream.string(value) }
    mutating func encode(_ value: Double) throws { try encoder.single(); try encoder.stream.double(value, at: codingPath) }
    mutating func encode(_ value: Float) throws { try encoder.single(); try encoder.stream.double(Double(value), at: codingPath) }
    mutating func encode(_ value: Int) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int8) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int16) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int32) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: Int64) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt8) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt16) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt32) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode(_ value: UInt64) throws { try encoder.single(); encoder.stream.literal(String(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.single()
        try encoder.stream.write(value, in: encoder.parent, at: encoder.key)
    }
}
