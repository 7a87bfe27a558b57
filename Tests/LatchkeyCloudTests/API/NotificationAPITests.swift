import AsyncHTTPClient
import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyProtocol
import NIOCore
import Testing

@Suite("Notifications (API)")
struct NotificationAPITests {
    @Test func theInboxFiltersByCategoryAndMarksRead() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            try await app.requestReset(scene)
            let services = try await app.notifications(of: scene.owner, category: "services")
            #expect(services.count == 1)
            #expect(try await app.notifications(of: scene.owner, category: "system").isEmpty)
            #expect(try await app.call(.get, "/api/v1/notifications?category=spam", token: scene.owner.token).errorCode == .invalidRequest)

            let notice = try #require(services.first)
            #expect(!notice.read)
            #expect(try await app.call(.post, "/api/v1/notifications/\(notice.id)/read", token: scene.installer.token).status == .notFound)
            let read: API.Notification = try await app.call(.post, "/api/v1/notifications/\(notice.id)/read", token: scene.owner.token).decode()
            #expect(read.read)
            #expect(try await app.notifications(of: scene.owner).first?.read == true)
        }
    }

    @Test func aListenerOnTheStreamHearsANewRequestWithin100Milliseconds() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await app.resetScene()
            let port = try #require(app.client.port)
            var streamRequest = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/notifications/stream")
            streamRequest.headers.add(name: "Authorization", value: "Bearer \(scene.owner.token)")
            let response = try await HTTPClient.shared.execute(streamRequest, timeout: .seconds(10))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            var chunks = response.body.makeAsyncIterator()
            // Wait for the stream to be open before anything happens.
            let greeting = try #require(try await chunks.next())
            #expect(String(buffer: greeting).hasPrefix(": connected"))

            let started = ContinuousClock.now
            let created: API.PasswordReset = try await app.requestReset(scene, mode: .onSite).decode()
            var received = ""
            while !received.contains("\n\n") {
                guard let chunk = try await chunks.next() else { break }
                received += String(buffer: chunk)
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .milliseconds(100), "took \(elapsed)")
            #expect(received.hasPrefix("event: notification\n"))
            let data = try #require(received.split(separator: "\n").first { $0.hasPrefix("data: ") }?.dropFirst(6))
            let notification = try WireCoding.makeDecoder().decode(API.Notification.self, from: Data(data.utf8))
            #expect(notification.kind == .resetRequested)
            #expect(notification.requestId == created.id)
        }
    }

    @Test func theStreamNeedsATokenAndCarriesOnlyTheListenersNotifications() async throws {
        try await TestPlatform.run(.live) { app in
            #expect(try await app.call(.get, "/api/v1/notifications/stream").status == .unauthorized)
            let scene = try await app.resetScene()
            let port = try #require(app.client.port)
            var streamRequest = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/notifications/stream")
            streamRequest.headers.add(name: "Authorization", value: "Bearer \(scene.installer.token)")
            let response = try await HTTPClient.shared.execute(streamRequest, timeout: .seconds(10))
            var chunks = response.body.makeAsyncIterator()
            _ = try await chunks.next()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            // The owner's "reset requested" must not reach the installer; the installer's next notice is the decline.
            try await app.call(.post, "/api/v1/password-resets/\(request.id)/decline", token: scene.owner.token)
            var received = ""
            while !received.contains("\n\n") {
                guard let chunk = try await chunks.next() else { break }
                received += String(buffer: chunk)
            }
            #expect(received.contains("\"kind\":\"reset_declined\""))
            #expect(!received.contains("reset_requested"))
        }
    }
}
