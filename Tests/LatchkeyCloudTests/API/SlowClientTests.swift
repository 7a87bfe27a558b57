import Foundation
import Hummingbird
@testable import LatchkeyCloud
import NIOCore
import Testing

/// Clients that hold a connection without saying what they want, driven over real sockets: each is dropped within
/// its limit, and a normal client on the same server is still served.
@Suite("Slow and oversized clients", .timeLimit(.minutes(3)))
struct SlowClientTests {
    /// Short limits, so the tests see them act in a second or two.
    static func shortLimits(_ configuration: inout LatchkeyConfiguration) {
        configuration.connectionLimits.headerTimeout = .seconds(1)
        configuration.connectionLimits.readTimeout = .seconds(1)
        configuration.connectionLimits.idleTimeout = .seconds(2)
    }

    /// The same, but a head may take its time: for tests of what comes after it (a busy test machine may pause this
    /// client for more than a second between connecting and sending).
    static func shortLimitsAfterTheHead(_ configuration: inout LatchkeyConfiguration) {
        shortLimits(&configuration)
        configuration.connectionLimits.headerTimeout = .seconds(10)
    }

    @Test func aConnectionThatNeverSpeaksIsClosed() async throws {
        try await TestPlatform.run(.live, configure: Self.shortLimits) { app in
            let silent = try await RawConnection.open(port: try #require(app.client.port))
            let outcome = try await silent.readUntilClosed(limit: .seconds(5))
            let closed = try #require(outcome, "a silent connection was still open after 5 s")
            #expect(closed.text.hasPrefix("HTTP/1.1 408"))
            #expect(closed.after < .seconds(3))
        }
    }

    /// The head takes about 16 s to trickle in, a byte every 100 ms: a server that let each byte restart its clock would
    /// serve it. The 1-s limit must cut it off long before; 8 s leaves room for a loaded CI machine (a run under the
    /// PostgreSQL suites took 4.1 s).
    @Test func headersTrickledByteByByteAreCutOff() async throws {
        try await TestPlatform.run(.live, configure: Self.shortLimits) { app in
            let slow = try await RawConnection.open(port: try #require(app.client.port))
            let head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + String(repeating: "a", count: 110) + "\r\n\r\n"
            let trickling = Task { await slow.trickle(head, every: .milliseconds(100)) }
            let outcome = try await slow.readUntilClosed(limit: .seconds(12))
            trickling.cancel()
            let closed = try #require(outcome, "a trickling client was still connected after 12 s")
            #expect(closed.after < .seconds(8))
            #expect(!closed.text.contains("200 OK"))
        }
    }

    /// The body takes 20 s to trickle in; the 1-s limit must cut it off long before. As for the head: 8 s leaves room
    /// for a loaded machine (in a full local run, where these tests took 28 s instead of 1.3, this one once found the
    /// connection still open at 6 s).
    @Test func aTrickledBodyIsCutOff() async throws {
        try await TestPlatform.run(.live, configure: Self.shortLimitsAfterTheHead) { app in
            let slow = try await RawConnection.open(port: try #require(app.client.port))
            try await slow.send("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
            let trickling = Task { await slow.trickle(String(repeating: " ", count: 200), every: .milliseconds(100)) }
            let outcome = try await slow.readUntilClosed(limit: .seconds(12))
            trickling.cancel()
            let closed = try #require(outcome, "a client trickling its body was still connected after 12 s")
            #expect(closed.after < .seconds(8))
        }
    }

    @Test func hugeHeadersAre431() async throws {
        let captured = CapturedLog()
        try await TestPlatform.run(.live, configure: Self.shortLimitsAfterTheHead, logger: captured.logger(label: "latchkey")) { app in
            let port = try #require(app.client.port)
            let huge = try await RawConnection.open(port: port)
            try await huge.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 200_000) + "\r\n\r\n")
            let outcome = try #require(try await huge.readUntilClosed(limit: .seconds(5)), "still open after 200 KB of headers")
            #expect(outcome.text.hasPrefix("HTTP/1.1 431"), "\(outcome.text.prefix(80))")

            // A head just over the limit, sent in one piece.
            let over = try await RawConnection.open(port: port)
            try await over.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 17_000) + "\r\n\r\n")
            let overAnswer = try #require(try await over.readUntilClosed(limit: .seconds(5)), "still open after 17 KB of headers")
            #expect(overAnswer.text.hasPrefix("HTTP/1.1 431"), "\(overAnswer.text.prefix(80))")

            // A head the parser refuses (a NUL in a header value) is a 400, not a connection held open.
            let malformed = try await RawConnection.open(port: port)
            try await malformed.send("GET /api/v1/keys HTTP/1.1\r\nHost: x\r\nX-T: a\u{0}b\r\n\r\n")
            let malformedAnswer = try #require(try await malformed.readUntilClosed(limit: .seconds(5)), "a malformed head was held open")
            #expect(malformedAnswer.text.hasPrefix("HTTP/1.1 400"), "\(malformedAnswer.text.prefix(80))")
            // A client's mistake is not our failure: nothing is logged as an error for these.
            let errors = captured.text.components(separatedBy: "\n").filter { $0.hasPrefix("error") || $0.hasPrefix("critical") }
            #expect(errors.isEmpty, "\(errors)")

            // The same on a kept-alive connection's second request.
            let kept = try await RawConnection.open(port: port)
            try await kept.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await kept.read(until: "ok\n", limit: .seconds(5)).hasPrefix("HTTP/1.1 200"))
            try await kept.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 200_000) + "\r\n\r\n")
            let second = try #require(try await kept.readUntilClosed(limit: .seconds(5)), "still open after 200 KB of headers")
            #expect(second.text.hasPrefix("HTTP/1.1 431"), "\(second.text.prefix(80))")
        }
    }

    @Test func anIdleKeptAliveConnectionIsClosedAndOthersAreServed() async throws {
        try await TestPlatform.run(.live, configure: Self.shortLimitsAfterTheHead) { app in
            let port = try #require(app.client.port)
            let idle = try await RawConnection.open(port: port)
            try await idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await idle.read(until: "ok\n", limit: .seconds(5)).hasPrefix("HTTP/1.1 200"))
            // The 2 s idle limit is the only one that can close it (the next, for a first head, is 10 s); a loaded CI
            // run closed it after 4.8 s, so the bound is the window up to that other limit, not a tight one.
            _ = try #require(try await idle.readUntilClosed(limit: .seconds(8)), "an idle connection was kept past 8 s")

            let fresh = try await RawConnection.open(port: port)
            try await fresh.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(try #require(try await fresh.readUntilClosed(limit: .seconds(5))).text.hasPrefix("HTTP/1.1 200"))
        }
    }
}
