import Foundation
import Hummingbird
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// The OpenAPI document and the router describe the same API: a route the document lacks, or an operation no route
/// answers, fails here.
@Suite("OpenAPI document", .timeLimit(.minutes(3)))
struct OpenAPIDocumentTests {
    struct Operation: Hashable, CustomStringConvertible {
        let method: String
        let path: String
        var description: String { "\(method) \(path)" }
    }

    static func documented() throws -> (version: String, operations: Set<Operation>, document: [String: Any]) {
        let document = try #require(try JSONSerialization.jsonObject(with: OpenAPIDocument.data()) as? [String: Any])
        let servers = try #require(document["servers"] as? [[String: Any]])
        let base = try #require(servers.first?["url"] as? String)
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var operations: Set<Operation> = []
        for (path, item) in paths {
            for method in item.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                operations.insert(Operation(method: method.uppercased(), path: base + path))
            }
        }
        return (try #require(document["openapi"] as? String), operations, document)
    }

    @Test func everyRouteIsDocumentedAndEveryOperationRouted() async throws {
        try await TestPlatform.run { app in
            let routed = Set(app.platform.routes.filter { $0.path.hasPrefix("/api/v1/") }.map { Operation(method: $0.method, path: $0.path) })
            let (version, documented, _) = try Self.documented()
            #expect(version.hasPrefix("3.1"))
            #expect(routed.count > 20, "the router's routes were not read: \(routed)")
            let undocumented = routed.subtracting(documented)
            let unrouted = documented.subtracting(routed)
            #expect(undocumented.isEmpty, "routes the document lacks: \(undocumented.sorted { $0.description < $1.description })")
            #expect(unrouted.isEmpty, "documented operations no route answers: \(unrouted.sorted { $0.description < $1.description })")
        }
    }

    @Test func theServiceServesItsDocument() async throws {
        try await TestPlatform.run { app in
            let answer = try await app.call(.get, "/api/v1/openapi.json")
            #expect(answer.status == .ok)
            let served = try JSONSerialization.jsonObject(with: Data(buffer: answer.body)) as? [String: Any]
            #expect(served?["openapi"] as? String == (try Self.documented().version))
        }
    }

    /// Every error code the service can answer is in the document's error schema, so clients can branch on all of them.
    @Test func theErrorSchemaListsEveryCode() throws {
        let text = String(decoding: try OpenAPIDocument.data(), as: UTF8.self)
        for code in APIErrorCode.allCases { #expect(text.contains("\"\(code.rawValue)\""), "\(code.rawValue)") }
    }
}
