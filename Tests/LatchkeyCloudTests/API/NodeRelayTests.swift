import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import Logging
import Testing

/// What crosses between nodes keeps what the receiving node needs.
@Suite(.timeLimit(.minutes(3)))
struct NodeRelayTests {
    /// The other node times its stream writes from this moment: whole seconds (the wire's dates) made a delivery of a
    /// millisecond read as anything up to a second (the benchmark's two-node p50 was 500 ms).
    @Test func aRelayedNotificationKeepsWhenItWasPublishedToTheMicrosecond() throws {
        let published = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let notification = AccountNotification(
            accountId: UUID(), category: .services, kind: .resetRequested, title: "Reset requested", body: "DEMO-NVR-01",
            requestId: UUID(), createdAt: published)
        let envelope = NodeRelay.Envelope(node: UUID(), message: .notification(
            accountId: notification.accountId, notification: API.Notification(notification), publishedAt: published.timeIntervalSince1970))
        let decoded = try WireCoding.makeDecoder().decode(NodeRelay.Envelope.self, from: WireCoding.makeEncoder().encode(envelope))
        guard case .notification(_, _, let publishedAt) = decoded.message else {
            Issue.record("decoded as \(decoded.message)")
            return
        }
        #expect(abs(try #require(publishedAt) - published.timeIntervalSince1970) < 1e-6)
    }

    /// A node of an earlier version sends no publication time: its notifications are still delivered.
    @Test func aNotificationFromAnEarlierNodeStillDecodes() throws {
        let json = """
            {"message":{"notification":{"accountId":"6F9619FF-8B86-D011-B42D-00C04FC964FF","notification":{"body":"b",\
            "category":"services","createdAt":"2026-11-27T08:00:00Z","id":"6F9619FF-8B86-D011-B42D-00C04FC964FE",\
            "kind":"reset_requested","read":false,"title":"t"}}},"node":"6F9619FF-8B86-D011-B42D-00C04FC964FD"}
            """
        let decoded = try WireCoding.makeDecoder().decode(NodeRelay.Envelope.self, from: Data(json.utf8))
        guard case .notification(_, _, let publishedAt) = decoded.message else {
            Issue.record("decoded as \(decoded.message)")
            return
        }
        #expect(publishedAt == nil)
    }

    /// A reset's step tells several people at once; the other node hears every message, in the order sent.
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "needs PostgreSQL (DATABASE_URL)"))
    func messagesSentTogetherAreAllHeardInTheOrderSent() async throws {
        try await TestDatabase.with { location in
            guard case .postgres(let url) = location else { return }
            let service = try await DatabaseService(location: location, logger: Logger(label: "test"))
            let (heard, hear) = AsyncStream.makeStream(of: String.self)
            let listening = try NodeRelay(url: url, database: service.database, logger: Logger(label: "test"), deliver: { message in
                if case .sessionEnded(let session) = message { hear.yield(session) }
            })
            let sending = try NodeRelay(url: url, database: service.database, logger: Logger(label: "test"), deliver: { _ in })
            let listener = Task { try await listening.run() }
            let probing = Task {
                while !Task.isCancelled {
                    await sending.send([.sessionEnded(session: "probe")])
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            var messages = heard.makeAsyncIterator()
            while await messages.next() != "probe" {}
            probing.cancel()
            _ = await probing.result
            let sent = (1...25).map { "session-\($0)" }
            await sending.send(sent.map { .sessionEnded(session: $0) })
            var received: [String] = []
            while received.count < sent.count, let session = await messages.next() {
                if session != "probe" { received.append(session) }
            }
            #expect(received == sent)
            listener.cancel()
            _ = await listener.result
            await service.close()
        }
    }
}
