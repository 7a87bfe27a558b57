import Foundation
import LatchkeyProtocol
import Testing

/// The device's LAN is real: the device and a courier in namespace `site-a`, a courier in `elsewhere` that reaches
/// the service but not that LAN, and the service in a namespace of its own. Only the first completes the reset.
@Suite("Two LANs, in network namespaces", .serialized, .timeLimit(.minutes(5)))
struct NetworkNamespaceTests {
    @Test func onlyACourierOnTheDevicesLANCompletesTheReset() async throws {
        guard let lans = try await TwoLANs.create() else { return }
        defer { lans.remove() }
        let scratch = try Scratch()
        defer { scratch.remove() }
        let cloudA = "http://\(TwoLANs.cloudOnSiteA):8080"
        let cloudElsewhere = "http://\(TwoLANs.cloudOnElsewhere):8080"

        let identity = try await Manufacture.device(serial: "NVR-SITE-A", model: "DS-7608NI-K2", in: scratch)
        let service = try Latchkey.Background(["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", scratch.folder("service").path,
                                               "--manufacturer-roots", identity.roots, "--log-level", "warning",
                                               // What this test is about is the LAN; TLS has its own tests (TLSTests).
                                               "--insecure-http"], namespace: TwoLANs.cloud)
        defer { service.stop() }
        let device = try Latchkey.Background([
            "device", "--identity", identity.file, "--firmware", "V4.62.200", "--type", "nvr",
            "--cloud", cloudA, "--listen", "\(TwoLANs.deviceAddress):8000", "--state-dir", scratch.folder("device").path,
            "--admin-password", "Vecchia2023",
        ], namespace: TwoLANs.siteA)
        defer { device.stop() }
        let code = try await device.line(startingWith: "verification code: ")
        _ = try await device.line(startingWith: "listening: ")

        let ownerOnSite = scratch.folder("owner-site-a")
        let ownerAway = scratch.folder("owner-elsewhere")
        let installer = scratch.folder("installer")
        try Manufacture.trust(identity.roots, in: [ownerOnSite, ownerAway, installer])
        func cli(_ arguments: [String], home: URL, in namespace: String, input: String = "") async throws -> Latchkey.Run {
            try await Latchkey.run(arguments, home: home, input: input, namespace: namespace)
        }
        var signedUp = try await cli(["signup", "--server", cloudA, "--email", "owner@site-a.it", "--name", "Laura", "--role", "owner",
                                      "--password-stdin"], home: ownerOnSite, in: TwoLANs.siteA, input: "owner password 1\n")
        for _ in 0..<50 where !signedUp.succeeded {
            try await Task.sleep(for: .milliseconds(200))
            signedUp = try await cli(["signup", "--server", cloudA, "--email", "owner@site-a.it", "--name", "Laura", "--role", "owner",
                                      "--password-stdin"], home: ownerOnSite, in: TwoLANs.siteA, input: "owner password 1\n")
        }
        #expect(signedUp.succeeded, "\(signedUp.text)")
        #expect(try await cli(["signup", "--server", cloudA, "--email", "ivan@impianti.it", "--name", "Ivan", "--role", "installer",
                               "--password-stdin"], home: installer, in: TwoLANs.siteA, input: "installer password 1\n").succeeded)
        #expect(try await cli(["login", "--server", cloudA, "--email", "owner@site-a.it", "--password-stdin"], home: ownerOnSite,
                              in: TwoLANs.siteA, input: "owner password 1\n").succeeded)
        #expect(try await cli(["login", "--server", cloudElsewhere, "--email", "owner@site-a.it", "--password-stdin"], home: ownerAway,
                              in: TwoLANs.elsewhere, input: "owner password 1\n").succeeded)
        #expect(try await cli(["login", "--server", cloudA, "--email", "ivan@impianti.it", "--password-stdin"], home: installer,
                              in: TwoLANs.siteA, input: "installer password 1\n").succeeded)
        let site = try await cli(["sites", "--create", "Bar Centrale", "--json"], home: ownerOnSite, in: TwoLANs.siteA)
        let siteId = try WireCoding.makeDecoder().decode(API.Site.self, from: Data(site.output.utf8)).id.uuidString
        #expect(try await cli(["authorize", "--site", siteId, "--installer", "ivan@impianti.it"], home: ownerOnSite, in: TwoLANs.siteA).succeeded)
        #expect(try await cli(["bind", "--site", siteId, "--serial", "NVR-SITE-A", "--code", code], home: ownerOnSite, in: TwoLANs.siteA).succeeded)

        // Discovery on site-a finds the device; from elsewhere nothing answers.
        #expect(try await cli(["discover"], home: ownerOnSite, in: TwoLANs.siteA).output.contains("NVR-SITE-A"))
        #expect(try await cli(["discover"], home: ownerAway, in: TwoLANs.elsewhere).output.contains("Nothing answered"))

        let request = try await cli(["reset", "request", "--device", "NVR-SITE-A", "--mode", "off-site", "--yes", "--json"],
                                    home: installer, in: TwoLANs.siteA)
        let id = try WireCoding.makeDecoder().decode(API.PasswordReset.self, from: Data(request.output.utf8)).id.uuidString

        // Away from the LAN the owner can approve, but not obtain a proximity proof: the reset does not happen.
        let away = try await cli(["reset", "approve", id, "--new-password-stdin"], home: ownerAway, in: TwoLANs.elsewhere,
                                 input: "Nuova2026x\n")
        #expect(!away.succeeded)
        #expect(away.text.contains("did not answer discovery"))
        let direct = try await cli(["reset", "approve", id, "--device-address", "\(TwoLANs.deviceAddress):8000"], home: ownerAway,
                                   in: TwoLANs.elsewhere)
        #expect(!direct.succeeded)
        #expect(direct.text.contains("must be on the device's LAN"))
        #expect(try await deviceLogin("Vecchia2023") == "200")
        #expect(try await cli(["reset", "status", id], home: ownerOnSite, in: TwoLANs.siteA).output.contains("approved"))

        // On site-a the owner's app finds the device and completes it.
        let onSite = try await cli(["reset", "approve", id], home: ownerOnSite, in: TwoLANs.siteA)
        #expect(onSite.succeeded, "\(onSite.text)")
        #expect(onSite.output.contains("password reset successfully"))
        #expect(try await deviceLogin("Nuova2026x") == "200")
        #expect(try await deviceLogin("Vecchia2023") == "401")
    }

    /// Logs in to the device from inside site-a.
    func deviceLogin(_ password: String) async throws -> String {
        let run = try await TwoLANs.command("/usr/sbin/ip", ["netns", "exec", TwoLANs.siteA, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                                             "-X", "POST", "http://\(TwoLANs.deviceAddress):8000/local/v1/login",
                                                             "-H", "Content-Type: application/json",
                                                             "-d", #"{"username": "admin", "password": "\#(password)"}"#])
        return run.output
    }
}

/// Three namespaces joined by veth pairs: `latchkey-cloud` ↔ `site-a`, `latchkey-cloud` ↔ `elsewhere`; no route
/// between `site-a` and `elsewhere`. Made by the test and removed by it; nothing leaves them.
struct TwoLANs {
    static let cloud = "latchkey-cloud"
    static let siteA = "site-a"
    static let elsewhere = "elsewhere"
    static let cloudOnSiteA = "10.77.1.1"
    static let deviceAddress = "10.77.1.2"
    static let cloudOnElsewhere = "10.77.2.1"
    static let awayAddress = "10.77.2.2"

    /// The namespaces, or nil (and a loud message, a failure in CI) where this machine refuses them.
    static func create() async throws -> TwoLANs? {
        let lans = TwoLANs()
        lans.remove()
        let steps: [[String]] = [
            ["netns", "add", cloud], ["netns", "add", siteA], ["netns", "add", elsewhere],
            ["link", "add", "lk-cloud-a", "type", "veth", "peer", "name", "lk-a-cloud"],
            ["link", "add", "lk-cloud-e", "type", "veth", "peer", "name", "lk-e-cloud"],
            ["link", "set", "lk-cloud-a", "netns", cloud], ["link", "set", "lk-a-cloud", "netns", siteA],
            ["link", "set", "lk-cloud-e", "netns", cloud], ["link", "set", "lk-e-cloud", "netns", elsewhere],
            ["-n", cloud, "addr", "add", "\(cloudOnSiteA)/24", "dev", "lk-cloud-a"],
            ["-n", cloud, "addr", "add", "\(cloudOnElsewhere)/24", "dev", "lk-cloud-e"],
            ["-n", siteA, "addr", "add", "\(deviceAddress)/24", "broadcast", "10.77.1.255", "dev", "lk-a-cloud"],
            ["-n", elsewhere, "addr", "add", "\(awayAddress)/24", "broadcast", "10.77.2.255", "dev", "lk-e-cloud"],
            ["-n", cloud, "link", "set", "lo", "up"], ["-n", siteA, "link", "set", "lo", "up"], ["-n", elsewhere, "link", "set", "lo", "up"],
            ["-n", cloud, "link", "set", "lk-cloud-a", "up"], ["-n", cloud, "link", "set", "lk-cloud-e", "up"],
            ["-n", siteA, "link", "set", "lk-a-cloud", "up"], ["-n", elsewhere, "link", "set", "lk-e-cloud", "up"],
        ]
        for step in steps {
            let run = try await command("/usr/sbin/ip", step)
            guard run.status == 0 else {
                lans.remove()
                let message = "NETWORK NAMESPACES REFUSED: `ip \(step.joined(separator: " "))` failed (\(run.output.trimmingCharacters(in: .whitespacesAndNewlines))). "
                    + "The two-LAN test needs root and iproute2; it did NOT run."
                if ProcessInfo.processInfo.environment["CI"] != nil {
                    Issue.record(Comment(rawValue: message))
                } else {
                    FileHandle.standardError.write(Data("\n*** \(message) ***\n\n".utf8))
                }
                return nil
            }
        }
        return lans
    }

    /// Deleting a namespace deletes the veth ends in it.
    func remove() {
        for namespace in [Self.cloud, Self.siteA, Self.elsewhere] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "del", namespace]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try? process.run()
            process.waitUntilExit()
        }
    }

    static func command(_ path: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard FileManager.default.isExecutableFile(atPath: path) else { return (127, "\(path) is not installed") }
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
