import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyProtocol
import Testing

@Suite("Bad input changes nothing (API)", .timeLimit(.minutes(3)))
struct BadInputAPITests {
    @Test(arguments: [
        ("", "needs a JSON body"),
        ("{not json", "not valid JSON"),
        (#"{"email": "a@example.com", "password": "long enough 1", "name": "A"}"#, "Missing field 'role'"),
        (#"{"email": "a@example.com", "password": "long enough 1", "name": "A", "role": "admin"}"#, "owner, installer"),
        (#"{"email": 42, "password": "long enough 1", "name": "A", "role": "owner"}"#, "must be a string"),
        (#"{"email": "a@example.com", "password": "long enough 1", "name": null, "role": "owner"}"#, "name"),
        (#"{"email": "not-an-email", "password": "long enough 1", "name": "A", "role": "owner"}"#, "not an e-mail"),
        (#"{"email": "a@example.com", "password": "long enough 1", "name": "\#(String(repeating: "n", count: 101))", "role": "owner"}"#, "at most 100"),
        (#"[1, 2, 3]"#, "object"),
    ])
    func signUpRefusesWithAClearMessage(body: String, expected: String) async throws {
        try await TestPlatform.run { app in
            let answer = try await app.call(.post, "/api/v1/accounts", json: body)
            #expect(answer.status == .badRequest)
            #expect(answer.errorCode == .invalidRequest)
            #expect(answer.errorMessage?.contains(expected) == true, "\(answer.errorMessage ?? "")")
            let signIn = try await app.call(.post, "/api/v1/sessions", body: API.SignIn(email: "a@example.com", password: "long enough 1"))
            #expect(signIn.status == .unauthorized)
        }
    }

    @Test func aWeakAccountPasswordIsRefused() async throws {
        try await TestPlatform.run { app in
            let answer = try await app.call(.post, "/api/v1/accounts", body: API.SignUp(email: "a@example.com", password: "short", name: "A", role: .owner))
            #expect(answer.status == .unprocessableContent)
            #expect(answer.errorCode == .weakPassword)
        }
    }

    @Test func oversizedBodiesAndOverlongFieldsChangeNothing() async throws {
        try await TestPlatform.run { app in
            let owner = try await app.signUp(.owner)
            let huge = #"{"name": "\#(String(repeating: "x", count: 100_000))"}"#
            #expect(try await app.call(.post, "/api/v1/sites", token: owner.token, json: huge).errorCode == .invalidRequest)
            let longName = try await app.call(.post, "/api/v1/sites", token: owner.token, body: API.CreateSite(name: String(repeating: "x", count: 101)))
            #expect(longName.errorCode == .invalidRequest)
            let blank = try await app.call(.post, "/api/v1/sites", token: owner.token, body: API.CreateSite(name: "   "))
            #expect(blank.errorCode == .invalidRequest)
            #expect(try await app.call(.get, "/api/v1/sites", token: owner.token).decode([API.Site].self).isEmpty)
        }
    }

    @Test func unknownAndMalformedIdsAnswerNotFound() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            for path in [
                "/api/v1/sites/\(UUID())", "/api/v1/sites/not-a-uuid", "/api/v1/sites/\(UUID())/devices",
                "/api/v1/password-resets/\(UUID())", "/api/v1/password-resets/42", "/api/v1/devices/NOPE/audit",
                "/api/v1/nothing-here",
            ] {
                let answer = try await app.call(.get, path, token: scene.owner.token)
                #expect(answer.status == .notFound, "\(path)")
                #expect(answer.errorCode == .notFound, "\(path)")
            }
            let approve = try await app.call(.post, "/api/v1/password-resets/\(UUID())/approve", token: scene.owner.token,
                                             body: API.ApprovePasswordReset(sealedPassword: sampleSealedPassword))
            #expect(approve.status == .notFound)
        }
    }

    @Test func badResetInputLeavesNoRequestBehind() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let path = "/api/v1/devices/\(scene.device.serial)/password-resets"
            for body in [#"{"mode": "sideways"}"#, #"{"mode": 1}"#, "{}", "nope"] {
                let answer = try await app.call(.post, path, token: scene.installer.token, json: body)
                #expect(answer.status == .badRequest)
                #expect(answer.errorCode == .invalidRequest)
            }
            #expect(try await app.call(.get, "/api/v1/password-resets?status=bogus", token: scene.installer.token).errorCode == .invalidRequest)
            #expect(try await app.call(.get, "/api/v1/password-resets", token: scene.installer.token).decode([API.PasswordReset].self).isEmpty)
            #expect(try await app.notifications(of: scene.owner).isEmpty)
        }
    }
}

@Suite("Operations (API)", .timeLimit(.minutes(3)))
struct OperationsAPITests {
    @Test func healthAndMetrics() async throws {
        try await TestPlatform.run(configure: { $0.metricsToken = "operator-metrics-token-42" }) { app in
            #expect(try await app.call(.get, "/healthz").status == .ok)
            let scene = try await app.resetScene()
            try await app.requestReset(scene)
            try await app.call(.get, "/api/v1/sites/\(UUID())", token: scene.owner.token)
            let metrics = try await app.call(.get, "/metrics", token: "operator-metrics-token-42").text
            #expect(metrics.contains(#"latchkey_http_requests_total{route="/api/v1/devices/{serial}/password-resets",method="POST",status="201"} 1"#))
            #expect(metrics.contains(#"latchkey_http_requests_total{route="/api/v1/sites/{id}",method="GET",status="404"} 1"#))
            #expect(metrics.contains(#"latchkey_password_reset_requests{status="pending"} 1"#))
        }
    }

    @Test func thePlatformKeyIsCreatedOnceAndKept() async throws {
        try await TestDatabase.with { location in
            let configuration = LatchkeyConfiguration.testing(database: location)
            defer { configuration.removeTestingKeyFolder() }
            var keySets: [API.KeySet] = []
            for _ in 0..<2 {
                let platform = try await buildPlatform(configuration)
                let keySet = try await platform.application.test(.router) { client in
                    try await client.execute(uri: "/api/v1/keys", method: .get) { response in
                        try WireCoding.makeDecoder().decode(API.KeySet.self, from: Data(buffer: response.body))
                    }
                }
                keySets.append(keySet)
            }
            #expect(keySets.count == 2)
            #expect(keySets[0].keys == keySets[1].keys)
            let key = try #require(keySets.first?.keys.first)
            #expect(key.kty == "OKP" && key.crv == "Ed25519" && key.alg == "EdDSA")
        }
    }
}
