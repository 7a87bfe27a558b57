import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LatchkeyCloud
import LatchkeyProtocol
import Testing

/// Repeated attempts answer `429 rate_limited` with `Retry-After`, counted per source (the forwarded one, from a
/// trusted proxy only) and per account, so that a stranger's tries cost the stranger.
@Suite("Limits on repeated attempts", .timeLimit(.minutes(3)))
struct RateLimitTests {
    func signIn(_ app: TestPlatform, email: String, password: String, from address: String) async throws -> TestPlatform.Answer {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[HTTPField.Name("X-Forwarded-For")!] = address
        let body = String(decoding: try WireCoding.makeEncoder().encode(API.SignIn(email: email, password: password)), as: UTF8.self)
        return try await app.client.execute(uri: "/api/v1/sessions", method: .post, headers: headers, body: ByteBuffer(string: body)) {
            TestPlatform.Answer(status: $0.status, body: $0.body)
        }
    }

    @Test func aStrangersWrongSignInsLockTheStrangerNotTheOwner() async throws {
        try await TestPlatform.run(.live, configure: { $0.trustedProxies = ["127.0.0.1"] }) { app in
            let owner = try await app.signUp(.owner)
            var statuses: [Int] = []
            for _ in 1...12 {
                statuses.append(Int(try await signIn(app, email: owner.account.email, password: "wrong password 1", from: "203.0.113.66").status.code))
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == 401 }, "\(statuses)")
            #expect(statuses.suffix(2).allSatisfy { $0 == 429 }, "\(statuses)")
            let limited = try await signIn(app, email: owner.account.email, password: "correct horse 1", from: "203.0.113.66")
            #expect(limited.errorCode == .rateLimited)
            // The owner, elsewhere, signs in.
            #expect(try await signIn(app, email: owner.account.email, password: "correct horse 1", from: "198.51.100.7").status == .created)
        }
    }

    @Test func aFloodFromOneAddressIsRefusedWithRetryAfter() async throws {
        try await TestPlatform.run(.live, configure: { $0.trustedProxies = ["127.0.0.1"] }) { app in
            var last: HTTPResponse.Status = .ok
            var retryAfter: String?
            for attempt in 1...22 {
                var headers = HTTPFields()
                headers[.contentType] = "application/json"
                headers[HTTPField.Name("X-Forwarded-For")!] = "203.0.113.77"
                let body = #"{"email": "nobody\#(attempt)@example.com", "password": "whatever 123"}"#
                try await app.client.execute(uri: "/api/v1/sessions", method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    last = $0.status
                    retryAfter = $0.headers[.retryAfter]
                }
            }
            #expect(last == .tooManyRequests)
            let seconds = try #require(retryAfter.flatMap(Int.init))
            #expect((1...60).contains(seconds))
        }
    }

    /// A forwarded address from anyone but the trusted proxy is not believed: the limit counts the real peer.
    @Test func aForwardedAddressFromAnUntrustedPeerIsNotBelieved() async throws {
        try await TestPlatform.run(.live) { app in
            for attempt in 1...21 {
                let answer = try await signIn(app, email: "nobody\(attempt)@example.com", password: "whatever 123", from: "192.0.2.\(attempt)")
                if attempt == 21 { #expect(answer.errorCode == .rateLimited) }
            }
        }
    }
}
