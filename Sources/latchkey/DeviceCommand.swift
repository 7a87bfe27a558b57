import ArgumentParser
import Foundation
import LatchkeyDevice
import LatchkeyProtocol

/// `latchkey device`: runs one emulated camera, NVR or door station.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Run an emulated device: LAN discovery, its local API, and its channel to the Latchkey service."
    )

    @Option(help: "The identity file `latchkey manufacturer issue` wrote: keys, certificate chain, label code.")
    var identity: String?
    @Option(help: "Instead of --identity: a manufacturer CA folder that issues this device's identity on first start.")
    var manufacturer: String?
    @Option(help: "With --manufacturer: the serial number.") var serial: String?
    @Option(help: "With --manufacturer: the model (e.g. DS-7608NI-K2).") var model: String?
    @Option(help: "The firmware version (e.g. V4.62.200).") var firmware: String
    @Option(name: .customLong("type"), help: "camera, nvr or door_station.") var deviceType: String = "camera"
    @Option(help: "The Latchkey service to connect to.") var cloud: String = "http://127.0.0.1:8080"
    @Option(name: .customLong("ca-file"), help: "PEM of the CA that signed the service's TLS certificate (else LATCHKEY_CA_FILE).")
    var caFile: String?
    @Option(help: "HOST:PORT of the device's local API.") var listen: String = "127.0.0.1:8000"
    @Option(name: .customLong("state-dir"), help: "Where the device keeps its keys and settings.") var stateDir: String
    @Option(name: .customLong("admin-password"), help: "Activate with this admin password (else the device starts inactive).")
    var adminPassword: String?
    @Option(name: .customLong("verification-code"), help: "With --manufacturer: the six letters for the label (else chosen).")
    var verificationCode: String?
    @Option(name: .customLong("discovery-port"), help: "UDP port for SADP discovery.") var discoveryPort: Int = SADP.port
    @Option(name: .customLong("advertise"), help: "The IPv4 address discovery answers with (default the listen host).")
    var advertise: String?

    func run() async throws {
        guard let type = DeviceType(rawValue: deviceType) else {
            throw ValidationError("--type must be one of \(DeviceType.allowedValues).")
        }
        if let url = URL(string: cloud), url.scheme == "https", let host = url.host,
            host.allSatisfy({ $0.isNumber || $0 == "." }) || host.contains(":")
        {
            throw ValidationError("--cloud \(cloud): over TLS, name the service by the DNS name in its certificate, not an IP address.")
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:8000.")
        }
        let configuration = DeviceConfiguration(
            identity: try loadIdentity(), deviceType: type, firmware: firmware, cloudURL: cloud,
            listenHost: String(listen[..<colon]), listenPort: port, stateDirectory: stateDir, adminPassword: adminPassword,
            discoveryPort: discoveryPort, advertisedAddress: advertise,
            caFile: caFile ?? ProcessInfo.processInfo.environment["LATCHKEY_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 })
        let runner: DeviceRunner
        do {
            runner = try DeviceRunner(configuration: configuration)
        } catch let error as DeviceError {
            throw ValidationError(error.message)
        }
        say("serial: \(configuration.serial)")
        say("verification code: \(await runner.device.verificationCode)")
        if await !runner.device.isActivated { say("inactive: activate with POST /local/v1/activate") }
        try await runner.run { host, port in say("listening: \(host):\(port)") }
    }
}

extension DeviceCommand {
    /// The identity from `--identity`; or, with `--manufacturer`, the one in the state folder, issued on first start
    /// as a factory would.
    func loadIdentity() throws -> DeviceIdentityFile {
        if let identity {
            do { return try DeviceIdentityFile.read(from: URL(fileURLWithPath: identity)) } catch {
                throw ValidationError("--identity \(identity) is not a device identity file: \(error)")
            }
        }
        guard let manufacturer, let serial, let model else {
            throw ValidationError("Give --identity FILE (from `latchkey manufacturer issue`), or --manufacturer DIR with --serial and --model.")
        }
        let file = URL(fileURLWithPath: stateDir).appendingPathComponent("identity.json")
        if let existing = try? DeviceIdentityFile.read(from: file) {
            guard existing.serial == serial else { throw ValidationError("\(stateDir) holds the identity of \(existing.serial), not \(serial).") }
            return existing
        }
        let authority: ManufacturerAuthority
        do { authority = try ManufacturerAuthority.load(from: URL(fileURLWithPath: manufacturer)) } catch {
            throw ValidationError("--manufacturer \(manufacturer) is not a manufacturer CA folder (make one with `latchkey manufacturer init`).")
        }
        let issued: DeviceIdentityFile
        do {
            issued = try authority.issue(serial: serial, model: model, labelCode: verificationCode?.uppercased())
        } catch let error as AttestationError {
            throw ValidationError(error.description)
        }
        try issued.write(to: file)
        return issued
    }
}

/// Writes a line straight to standard output: scripts and tests read these lines while the process keeps running.
/// A reader that went away (`latchkey notifications | head -2`) is no error: the rest is simply not wanted.
func say(_ line: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((TerminalText.printable(line) + "\n").utf8))
}
