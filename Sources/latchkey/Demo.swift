import Foundation
import LatchkeyClient
import LatchkeyDevice
import LatchkeyProtocol
import Logging

/// `latchkey serve --demo`: a demo owner and installer, a site, an authorization, and three emulated devices on
/// loopback — an NVR, a camera, and a camera whose firmware is too old — so a newcomer can try the reset in minutes.
struct Demo {
    static let owner = (email: "owner@demo.latchkey", password: "demo-owner-2026", name: "Laura Rossi")
    static let installer = (email: "installer@demo.latchkey", password: "demo-installer-2026", name: "Ivan Bianchi")
    static let siteName = "Bar Centrale (demo)"
    static let adminPassword = "Vecchia2023"

    struct DemoDevice {
        let serial: String
        let model: String
        let type: DeviceType
        let firmware: String
        let host: String
    }

    /// Each on its own loopback address, so each answers discovery on the standard port.
    static let devices = [
        DemoDevice(serial: "DEMO-NVR-01", model: "DS-7608NI-K2", type: .nvr, firmware: "V4.62.200", host: "127.0.0.2"),
        DemoDevice(serial: "DEMO-CAM-01", model: "DS-2CD2143G2-I", type: .camera, firmware: "V5.7.3", host: "127.0.0.3"),
        DemoDevice(serial: "DEMO-CAM-OLD", model: "DS-2CD1043G0-I", type: .camera, firmware: "V5.5.0", host: "127.0.0.4"),
    ]

    let server: String
    let dataDirectory: String
    /// The demo's own manufacturer: its devices' identities come from it, and the demo platform trusts its root.
    let authority: ManufacturerAuthority
    /// Provisioned into the demo devices' identities, as a manufacturer that ships with the platform key would.
    let platformKey: String
    let logger: Logger

    /// The demo manufacturer CA under the data folder, made on the first demo run (`latchkey manufacturer issue
    /// --authority DATA_DIR/demo-manufacturer` issues more devices for it).
    static func manufacturer(in dataDirectory: String) throws -> ManufacturerAuthority {
        let folder = URL(fileURLWithPath: dataDirectory).appendingPathComponent("demo-manufacturer")
        if let existing = try? ManufacturerAuthority.load(from: folder) { return existing }
        let authority = try ManufacturerAuthority.create(name: "Latchkey Demo Devices")
        try authority.save(in: folder)
        return authority
    }

    /// A demo device's identity: issued once, then read back so a restarted demo keeps its devices' keys.
    private func identity(of device: DemoDevice, in stateDirectory: URL) throws -> DeviceIdentityFile {
        let file = stateDirectory.appendingPathComponent("identity.json")
        if let existing = try? DeviceIdentityFile.read(from: file) { return existing }
        let issued = try authority.issue(serial: device.serial, model: device.model, platformKey: platformKey)
        try issued.write(to: file)
        return issued
    }

    /// Seeds the accounts and site through the API, then runs the devices until cancelled.
    func run() async throws {
        let anonymous = LatchkeyClient(server: server)
        try await waitForService(anonymous)
        for person in [(Self.owner, AccountRole.owner), (Self.installer, .installer)] {
            let form = API.SignUp(email: person.0.email, password: person.0.password, name: person.0.name, role: person.1)
            do {
                _ = try await untyped { try await anonymous.signUp(form) }
            } catch let error as ClientError where error.code == .accountExists {
                // A demo started before: its accounts are still there.
            }
        }
        var owner = anonymous
        owner.token = try await anonymous.signIn(email: Self.owner.email, password: Self.owner.password).token
        let site: API.Site
        if let existing = try await owner.sites().first(where: { $0.name == Self.siteName }) {
            site = existing
        } else {
            site = try await owner.createSite(name: Self.siteName, address: "Via Roma 1, Milano")
        }
        _ = try await owner.authorize(site: site.id, installerEmail: Self.installer.email, permissions: [.view, .passwordReset])

        // The demo's apps trust its manufacturer, as an app that ships with the manufacturers' roots does.
        for home in ["demo-owner", "demo-installer"] {
            let folder = URL(fileURLWithPath: dataDirectory).appendingPathComponent(home)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(try authority.rootsPEM.utf8).write(to: folder.appendingPathComponent("manufacturer-roots.pem"))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var runners: [(DemoDevice, DeviceRunner)] = []
            for device in Self.devices {
                let stateDirectory = URL(fileURLWithPath: dataDirectory).appendingPathComponent("demo-devices/\(device.serial)")
                let configuration = DeviceConfiguration(
                    identity: try identity(of: device, in: stateDirectory), deviceType: device.type, firmware: device.firmware,
                    cloudURL: server, listenHost: device.host, listenPort: 8000, stateDirectory: stateDirectory.path,
                    adminPassword: Self.adminPassword, discoveryHost: device.host)
                let runner = try DeviceRunner(configuration: configuration, logger: logger)
                runners.append((device, runner))
                group.addTask { try await runner.run(handlingSignals: false) }
            }
            for (device, runner) in runners {
                try await bindWhenConnected(device, code: await runner.device.verificationCode, site: site, owner: owner)
            }
            printWalkThrough(site: site)
            try await group.waitForAll()
        }
    }

    private func waitForService(_ client: LatchkeyClient) async throws {
        for _ in 0..<100 {
            if (try? await client.compatibility()) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CLIError("The demo could not reach its own service at \(server).")
    }

    /// Binding needs the device's channel up; a restarted demo finds its devices already bound.
    private func bindWhenConnected(_ device: DemoDevice, code: String, site: API.Site, owner: LatchkeyClient) async throws {
        for _ in 0..<100 {
            do {
                _ = try await untyped { try await owner.bind(site: site.id, serial: device.serial, verificationCode: code) }
                return
            } catch let error as ClientError where error.code == .deviceAlreadyBound {
                return
            } catch let error as ClientError where error.code == .deviceOffline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw CLIError("""
            Demo device \(device.serial) never connected. If \(dataDirectory) holds a demo from an earlier version of Latchkey \
            (its devices bound with other keys), remove that folder and start the demo again.
            """)
    }

    private func printWalkThrough(site: API.Site) {
        let probes = Self.devices.map { "--probe \($0.host)" }.joined(separator: " ")
        say("""

            ── Latchkey demo ─────────────────────────────────────────────
            service:   \(server)
            owner:     \(Self.owner.email) / \(Self.owner.password)
            installer: \(Self.installer.email) / \(Self.installer.password)
            site:      \(Self.siteName)  \(site.id)
            devices:   \(Self.devices.map { "\($0.serial) (\($0.model) \($0.firmware)) at \($0.host):8000" }.joined(separator: "\n           "))
            device admin password before the reset: \(Self.adminPassword)

            The off-site reset, installer in one terminal, owner in another (latchkey = the built executable):

              # installer
              export LATCHKEY_HOME=.latchkey/demo-installer
              echo '\(Self.installer.password)' | latchkey login --email \(Self.installer.email) --password-stdin
              latchkey devices --site \(site.id)
              latchkey discover \(probes)
              latchkey reset request --device DEMO-NVR-01 --mode off-site

              # owner (on the NVR's LAN: here, loopback)
              export LATCHKEY_HOME=.latchkey/demo-owner
              echo '\(Self.owner.password)' | latchkey login --email \(Self.owner.email) --password-stdin
              latchkey notifications --services
              echo 'Nuova2026' | latchkey reset approve <request id> --new-password-stdin --probe 127.0.0.2

              # the NVR now takes the new password
              curl -s -X POST http://127.0.0.2:8000/local/v1/login -H 'Content-Type: application/json' -d '{"username": "admin", "password": "Nuova2026"}'
            ──────────────────────────────────────────────────────────────
            """)
    }
}

/// Forgets a call's error type, so refusals can be matched by code in an ordinary `catch` (Swift 6.3 crashes on
/// `catch … where` over a typed error here).
private func untyped<T>(_ work: () async throws -> T) async throws -> T {
    try await work()
}
