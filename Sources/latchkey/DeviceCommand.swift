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

    @Option(help: "The serial number.") var serial: String
    @Option(help: "The model (e.g. DS-7608NI-K2).") var model: String
    @Option(help: "The firmware version (e.g. V4.62.200).") var firmware: String
    @Option(name: .customLong("type"), help: "camera, nvr or door_station.") var deviceType: String = "camera"
    @Option(help: "The Latchkey service to connect to.") var cloud: String = "http://127.0.0.1:8080"
    @Option(help: "HOST:PORT of the device's local API.") var listen: String = "127.0.0.1:8000"
    @Option(name: .customLong("state-dir"), help: "Where the device keeps its keys and settings.") var stateDir: String
    @Option(name: .customLong("admin-password"), help: "Activate with this admin password (else the device starts inactive).")
    var adminPassword: String?
    @Option(name: .customLong("verification-code"), help: "The six letters on the label (else chosen on first start).")
    var verificationCode: String?
    @Option(name: .customLong("discovery-port"), help: "UDP port for SADP discovery.") var discoveryPort: Int = SADP.port
    @Option(name: .customLong("advertise"), help: "The IPv4 address discovery answers with (default the listen host).")
    var advertise: String?

    func run() async throws {
        guard let type = DeviceType(rawValue: deviceType) else {
            throw ValidationError("--type must be one of \(DeviceType.allowedValues).")
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:8000.")
        }
        let configuration = DeviceConfiguration(
            serial: serial, model: model, deviceType: type, firmware: firmware, cloudURL: cloud,
            listenHost: String(listen[..<colon]), listenPort: port, stateDirectory: stateDir, adminPassword: adminPassword,
            verificationCode: verificationCode?.uppercased(), discoveryPort: discoveryPort, advertisedAddress: advertise)
        let runner: DeviceRunner
        do {
            runner = try DeviceRunner(configuration: configuration)
        } catch let error as DeviceError {
            throw ValidationError(error.message)
        }
        say("serial: \(serial)")
        say("verification code: \(await runner.device.verificationCode)")
        if await !runner.device.isActivated { say("inactive: activate with POST /local/v1/activate") }
        try await runner.run { host, port in say("listening: \(host):\(port)") }
    }
}

/// Writes a line straight to standard output: scripts and tests read these lines while the process keeps running.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
