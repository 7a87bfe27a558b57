import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
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
}
