import Foundation
import LatchkeyProtocol
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `latchkey serve`, a real `latchkey device`, and the owner's and installer's CLI, each with its own home.
struct World: Sendable {
    let scratch: Scratch
    let service: Latchkey.Background
    let device: Latchkey.Background
    /// How the service and the device were started, to start them again after a crash.
    let serviceArguments: [String]
    let deviceArguments: [String]
    let server: String
    let serial: String
    let deviceAddress: String
    let discoveryPort: Int
    let siteId: String
    var ownerHome: URL { scratch.folder("owner") }
    var installerHome: URL { scratch.folder("installer") }

    /// With `tls`, the service runs on HTTPS with a certificate from a CA the test makes; the device and the CLI are
    /// given that CA (`--ca-file`, and `ca.pem` in each CLI home).
    static func start(onSiteWindow: String = "5m", tls: Bool = false) async throws -> World {
        let scratch = try Scratch()
        let port = servicePort()
        // Over TLS the service is named as its certificate names it (the device's WebSocket client sends the name as SNI).
        let server = tls ? "https://localhost:\(port)" : "http://127.0.0.1:\(port)"
        let serial = "NVR-\(UUID().uuidString.prefix(6))"
        // The manufacturer makes its CA and the device's identity; the platform trusts the CA's root.
        let identity = try await Manufacture.device(serial: serial, model: "DS-7608NI-K2", in: scratch)
        let certificate = tls ? try TestCA.make(in: scratch.folder("tls")) : nil
        let tlsServe = certificate.map { ["--tls-cert", $0.certificate, "--tls-key", $0.key] } ?? []
        let caFile = certificate.map { ["--ca-file", $0.ca] } ?? []
        let serviceArguments = ["serve", "--port", String(port), "--data-dir", scratch.folder("service").path,
                                "--manufacturer-roots", identity.roots, "--on-site-window", onSiteWindow, "--log-level", "warning"] + tlsServe
        let service = try Latchkey.Background(serviceArguments)
        try await waitForHealth(server, caFile: caFile)
        let discoveryPort = Int.random(in: 10_000..<20_000)
        var deviceArguments = [
            "device", "--identity", identity.file, "--firmware", "V4.62.200", "--type", "nvr",
            "--cloud", server, "--listen", "127.0.0.1:0", "--state-dir", scratch.folder("device").path,
            "--admin-password", "Vecchia2023", "--discovery-port", String(discoveryPort),
        ] + caFile
        let device = try Latchkey.Background(deviceArguments)
        let code = try await device.line(startingWith: "verification code: ")
        // The port the system gave the device's LAN API; a restart (`CrashTests`) listens on it again.
        let deviceAddress = try await device.line(startingWith: "listening: ")
        deviceArguments = deviceArguments.map { $0 == "127.0.0.1:0" ? deviceAddress : $0 }

        let owner = scratch.folder("owner")
        let installer = scratch.folder("installer")
        try Manufacture.trust(identity.roots, in: [owner, installer])
        if let certificate {
            for home in [owner, installer] {
                try FileManager.default.copyItem(atPath: certificate.ca, toPath: home.appendingPathComponent("ca.pem").path)
            }
        }
        #expect(try await Latchkey.run(["signup", "--server", server, "--email", "lm.rossi@gmail.com", "--name", "Laura Rossi",
                                        "--role", "owner", "--password-stdin"] + caFile, home: owner, input: "owner password 1\n").succeeded)
        #expect(try await Latchkey.run(["signup", "--server", server, "--email", "ivan@impianti.it", "--name", "Ivan Bianchi",
                                        "--role", "installer", "--password-stdin"] + caFile, home: installer,
                                       input: "installer password 1\n").succeeded)
        #expect(try await Latchkey.run(["login", "--server", server, "--email", "lm.rossi@gmail.com", "--password-stdin"] + caFile,
                                       home: owner, input: "owner password 1\n").succeeded)
        #expect(try await Latchkey.run(["login", "--server", server, "--email", "ivan@impianti.it", "--password-stdin"] + caFile,
                                       home: installer, input: "installer password 1\n").succeeded)
        let site = try await Latchkey.run(["sites", "--create", "Bar Centrale", "--json"], home: owner)
        let siteId = try WireCoding.makeDecoder().decode(API.Site.self, from: Data(site.output.utf8)).id.uuidString
        #expect(try await Latchkey.run(["authorize", "--site", siteId, "--installer", "ivan@impianti.it",
                                        "--permissions", "view,password_reset"], home: owner).succeeded)
        var bound = try await Latchkey.run(["bind", "--site", siteId, "--serial", serial, "--code", code], home: owner)
        for _ in 0..<50 where !bound.succeeded {
            try await Task.sleep(for: .milliseconds(100))
            bound = try await Latchkey.run(["bind", "--site", siteId, "--serial", serial, "--code", code], home: owner)
        }
        #expect(bound.succeeded, "\(bound.text)")
        return World(scratch: scratch, service: service, device: device, serviceArguments: serviceArguments,
                     deviceArguments: deviceArguments, server: server, serial: serial,
                     deviceAddress: deviceAddress, discoveryPort: discoveryPort, siteId: siteId)
    }

    func owner(_ arguments: [String], input: String = "") async throws -> Latchkey.Run {
        try await Latchkey.run(arguments, home: ownerHome, input: input)
    }

    func installer(_ arguments: [String], input: String = "") async throws -> Latchkey.Run {
        try await Latchkey.run(arguments, home: installerHome, input: input)
    }

    /// The installer asks; answers the request id.
    func request(_ mode: String) async throws -> String {
        let run = try await installer(["reset", "request", "--device", serial, "--mode", mode, "--yes", "--json"])
        #expect(run.succeeded, "\(run.text)")
        return try WireCoding.makeDecoder().decode(API.PasswordReset.self, from: Data(run.output.utf8)).id.uuidString
    }

    /// Discovery here is unicast to loopback on the test's own port.
    var lan: [String] { ["--discovery-port", String(discoveryPort), "--probe", "127.0.0.1"] }

    /// Logs in to the device's local API: 200 or 401.
    func deviceLogin(_ password: String) async throws -> Int {
        var request = URLRequest(url: URL(string: "http://\(deviceAddress)/local/v1/login")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try WireCoding.makeEncoder().encode(LocalAPI.Login(username: "admin", password: password))
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// Reads the presence code the device's own page would show ("Forgot password?"), from its local API.
    func presenceCode() async throws -> String? {
        var request = URLRequest(url: URL(string: "http://\(deviceAddress)/local/v1/presence-code")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data("{}".utf8)
        let (body, _) = try await URLSession.shared.data(for: request)
        return try? WireCoding.makeDecoder().decode(LocalAPI.PresenceCode.self, from: body).code
    }

    func stop() {
        device.stop()
        service.stop()
        scratch.remove()
    }

    /// A port for a test's service, below the range the system takes its own from (32768 and up), so that a port it
    /// gave a connection is never drawn (a device's port in 30000-40000 once was); device discovery draws from
    /// 10000-19999 for the same reason.
    static func servicePort() -> Int { Int.random(in: 20_000..<30_000) }

    static func waitForHealth(_ server: String, caFile: [String]) async throws {
        guard !caFile.isEmpty else { return try await waitForHealth(server) }
        for _ in 0..<100 {
            if try await Latchkey.run(["compat", "--server", server] + caFile).succeeded { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Latchkey.Failure(description: "latchkey serve did not come up at \(server)")
    }

    static func waitForHealth(_ server: String) async throws {
        for _ in 0..<200 {
            if let (_, response) = try? await URLSession.shared.data(from: URL(string: server + "/healthz")!),
                (response as? HTTPURLResponse)?.statusCode == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Latchkey.Failure(description: "latchkey serve did not come up at \(server)")
    }
}

/// `latchkey manufacturer init` and `issue`, as a manufacturer runs them.
enum Manufacture {
    /// The apps in these homes trust the manufacturer's root, as an app that ships with it does.
    static func trust(_ roots: String, in homes: [URL]) throws {
        for home in homes {
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: roots, toPath: home.appendingPathComponent("manufacturer-roots.pem").path)
        }
    }

    /// The identity file and the roots the platform must trust.
    static func device(serial: String, model: String, in scratch: Scratch) async throws -> (file: String, roots: String) {
        let authority = scratch.folder("manufacturer").path
        if !FileManager.default.fileExists(atPath: authority + "/authority.json") {
            let made = try await Latchkey.run(["manufacturer", "init", "--name", "Test Devices", "--out", authority])
            guard made.succeeded else { throw Latchkey.Failure(description: "manufacturer init: \(made.text)") }
        }
        let file = scratch.folder("identity-\(serial).json").path
        let issued = try await Latchkey.run(["manufacturer", "issue", "--authority", authority, "--serial", serial, "--model", model,
                                             "--out", file])
        guard issued.succeeded else { throw Latchkey.Failure(description: "manufacturer issue: \(issued.text)") }
        return (file, authority + "/roots.pem")
    }
}

/// A private CA and a P-256 server certificate for 127.0.0.1 and localhost, made with OpenSSL as an operator would
/// (`scripts/private-ca.sh`, which the benchmark uses too).
enum TestCA {
    static func make(in folder: URL, name: String = "Test CA") throws -> (ca: String, certificate: String, key: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/private-ca.sh")
        process.arguments = [folder.path, name]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Latchkey.Failure(description: "openssl could not make the test CA") }
        return (folder.appendingPathComponent("ca.pem").path, folder.appendingPathComponent("server.pem").path,
                folder.appendingPathComponent("server.key").path)
    }
}
