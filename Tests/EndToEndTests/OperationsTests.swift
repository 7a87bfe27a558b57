import Foundation
import Testing

/// What an operator meets first: a port already taken is said at once, and SIGTERM stops the service.
@Suite("Operating the service", .timeLimit(.minutes(5)))
struct OperationsTests {
    @Test func aBusyPortIsSaidAtOnceAndServeExits() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0)
        listen(holder, 1)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let started = ContinuousClock.now
        let run = try await Latchkey.run(["serve", "--port", String(port), "--data-dir", scratch.folder("service").path],
                                         timeout: .seconds(20))
        #expect(!run.succeeded)
        #expect(run.text.contains("port \(port) is in use"), "\(run.text.suffix(500))")
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(!run.text.contains("Expiry sweep failed"), "the sweeper spun after the server failed")
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalStopsTheServiceWithinSeconds(signal: Int32) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let port = World.servicePort()
        let service = try Latchkey.Background(["serve", "--port", String(port), "--data-dir", scratch.folder("service").path])
        try await World.waitForHealth("http://127.0.0.1:\(port)")
        // What the start said: the open-file limit it raised, and one line for the migrations, not two per migration.
        #expect(service.text.contains("Open-file limit"), "\(service.text.prefix(800))")
        #expect(service.text.components(separatedBy: "\n").filter { $0.contains("igrat") }.count == 1, "\(service.text.prefix(1500))")
        let stopping = ContinuousClock.now
        kill(service.process.processIdentifier, signal)
        while service.process.isRunning, ContinuousClock.now - stopping < .seconds(10) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!service.process.isRunning)
        #expect(ContinuousClock.now - stopping < .seconds(5))
        #expect(!service.text.contains(" error "), "a clean shutdown logs no errors: \(service.text.suffix(800))")
    }

    /// The CLI's network failures are sentences with a remedy, and an address typed without a scheme works.
    @Test func networkErrorsSayWhatToCheck() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let closed = try await Latchkey.run(["compat", "--server", "http://127.0.0.1:1"], timeout: .seconds(20))
        #expect(!closed.succeeded)
        #expect(closed.text.contains("Could not reach http://127.0.0.1:1 (connection refused) — is `latchkey serve` running there"),
                "\(closed.text)")
        let malformed = try await Latchkey.run(["compat", "--server", "http://exa mple"], timeout: .seconds(20))
        #expect(malformed.text.contains("is not a URL: give one such as http://127.0.0.1:8080"), "\(malformed.text)")

        let port = World.servicePort()
        let service = try Latchkey.Background(["serve", "--port", String(port), "--data-dir", scratch.folder("service").path])
        defer { service.stop() }
        try await World.waitForHealth("http://127.0.0.1:\(port)")
        let bare = try await Latchkey.run(["compat", "--server", "127.0.0.1:\(port)"], timeout: .seconds(20))
        #expect(bare.succeeded, "\(bare.text)")
        #expect(bare.text.contains("DS-7608NI-K2"))
        // TLS spoken to a plain-HTTP service: dropped by the service's header timeout, and said as a TLS problem.
        let tlsToPlain = try await Latchkey.run(["compat", "--server", "https://127.0.0.1:\(port)"], timeout: .seconds(40))
        #expect(!tlsToPlain.succeeded)
        #expect(tlsToPlain.text.contains("plain HTTP is reached with http://") || tlsToPlain.text.contains("starts with http://"),
                "\(tlsToPlain.text)")
    }
}
