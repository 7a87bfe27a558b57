import Foundation
import Testing

/// What an operator meets first: a port already taken is said at once, and SIGTERM stops the service.
@Suite("Operating the service")
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

    @Test func sigtermStopsTheServiceWithinSeconds() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let port = Int.random(in: 20_000..<30_000)
        let service = try Latchkey.Background(["serve", "--port", String(port), "--data-dir", scratch.folder("service").path])
        try await World.waitForHealth("http://127.0.0.1:\(port)")
        let stopping = ContinuousClock.now
        service.process.terminate()
        while service.process.isRunning, ContinuousClock.now - stopping < .seconds(10) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!service.process.isRunning)
        #expect(ContinuousClock.now - stopping < .seconds(5))
        #expect(!service.text.contains(" error "), "a clean shutdown logs no errors: \(service.text.suffix(800))")
    }
}
