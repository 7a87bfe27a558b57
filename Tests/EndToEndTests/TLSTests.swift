import Foundation
import LatchkeyProtocol
import Testing

/// Every link on TLS: the service on HTTPS with a private CA, the device on `wss`, the CLI on `https` with `--ca-file`.
@Suite("TLS on every link, end to end", .timeLimit(.minutes(5)))
struct TLSTests {
    @Test func theWholeResetOverTLS() async throws {
        let world = try await World.start(tls: true)
        defer { world.stop() }
        #expect(world.server.hasPrefix("https://"))
        let id = try await world.request("off-site")
        let approve = try await world.owner(["reset", "approve", id, "--new-password-stdin"] + world.lan, input: "Cifrata2026\n")
        #expect(approve.succeeded, "\(approve.text)")
        #expect(approve.output.contains("password reset successfully"))
        #expect(try await world.deviceLogin("Cifrata2026") == 200)
    }

    @Test func aClientOrDeviceGivenTheWrongCARefusesToConnectAndSaysWhy() async throws {
        let world = try await World.start(tls: true)
        defer { world.stop() }
        let wrong = try TestCA.make(in: world.scratch.folder("wrong-ca"), name: "Someone Else's CA")
        let cli = try await Latchkey.run(["compat", "--server", world.server, "--ca-file", wrong.ca])
        #expect(!cli.succeeded)
        #expect(cli.text.contains("certificate") && cli.text.contains("--ca-file"), "\(cli.text)")
        // Without any CA given, the system's CAs do not know the private one either.
        let system = try await Latchkey.run(["compat", "--server", world.server])
        #expect(!system.succeeded)

        let identity = try await Manufacture.device(serial: "NVR-WRONG-CA", model: "DS-7608NI-K2", in: world.scratch)
        let device = try Latchkey.Background([
            "device", "--identity", identity.file, "--firmware", "V4.62.200", "--type", "nvr", "--cloud", world.server,
            "--ca-file", wrong.ca, "--listen", "127.0.0.1:0", "--discovery-port", "0",
            "--state-dir", world.scratch.folder("wrong-ca-device").path,
        ])
        defer { device.stop() }
        let complaint = try await device.line(containing: "TLS certificate is not trusted")
        #expect(complaint.contains("--ca-file"))
        let devices = try await world.owner(["devices", "--site", world.siteId])
        #expect(!devices.output.contains("NVR-WRONG-CA"))
    }

    /// A platform that goes away under the channel (killed, restarting) ends TLS without a goodbye: that is the
    /// channel going down, not a certificate the device cannot trust, and the log must not send the operator to check
    /// the CA (seen in the benchmark: every device of a fleet logged it as an error after a restart).
    @Test func aPlatformThatDiesIsNotReportedAsAnUntrustedCertificate() async throws {
        let world = try await World.start(tls: true)
        defer { world.stop() }
        kill(world.service.process.processIdentifier, SIGKILL)
        world.service.process.waitUntilExit()
        _ = try await world.device.line(containing: "Cloud channel down")
        #expect(!world.device.text.contains("not trusted"), "\(world.device.text)")
    }

    @Test func plainHTTPOnANonLoopbackAddressIsRefused() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let refused = try await Latchkey.run(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", scratch.folder("service").path])
        #expect(!refused.succeeded)
        #expect(refused.text.contains("--tls-cert") && refused.text.contains("--behind-proxy") && refused.text.contains("--insecure-http"))
        let halfProxy = try await Latchkey.run(["serve", "--host", "0.0.0.0", "--port", "0", "--behind-proxy",
                                                "--data-dir", scratch.folder("service").path])
        #expect(!halfProxy.succeeded)
        #expect(halfProxy.text.contains("--trusted-proxy"))
    }
}
