import ArgumentParser
import Foundation
import LatchkeyCloud
import LatchkeyProtocol

/// `latchkey register-device`: puts a device on a site straight into the database.
///
/// Devices will arrive through their own channel and be bound with their verification code; until that exists
/// this operator tool is how a device reaches a site for trying the reset flow.
struct RegisterDevice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register-device",
        abstract: "Operator tool: put a device on a site directly in the database (until devices connect themselves)."
    )

    @Option(help: "The device's serial number.") var serial: String
    @Option(help: "The model, as on the compatibility list (e.g. DS-7608NI-K2).") var model: String
    @Option(help: "The firmware version (e.g. V4.62.200).") var firmware: String
    @Option(help: "camera, nvr or door_station.") var type: String = "camera"
    @Option(help: "The site's id.") var site: String
    @Option(name: .customLong("data-dir"), help: "Folder of the SQLite database (default ./.latchkey).") var dataDir: String?
    @Option(name: .customLong("database-url"), help: "postgres://… instead of SQLite.") var databaseURL: String?

    func run() async throws {
        guard let deviceType = DeviceType(rawValue: type) else {
            throw ValidationError("--type must be one of \(DeviceType.allowedValues).")
        }
        guard let siteId = UUID(uuidString: site) else { throw ValidationError("--site must be a site id (a UUID).") }
        var configuration = try readConfiguration(flags: [("data.dir", dataDir), ("database.url", databaseURL)])
        configuration.logLevel = .error
        let platform = try await buildPlatform(configuration)
        let device = Device(serial: serial, model: model, deviceType: deviceType, firmware: firmware, siteId: siteId, online: true)
        do {
            try await platform.store.transaction { session in
                guard try await session.sites.find(id: siteId) != nil else {
                    throw ValidationError("No site with id \(siteId): create it first (POST /api/v1/sites).")
                }
                try await session.devices.save(device)
            }
        } catch {
            await platform.closeDatabase()
            throw error
        }
        await platform.closeDatabase()
        let compatible = platform.compatibility.supports(model: model, firmware: firmware)
        print("registered \(serial) (\(model), \(firmware)) on site \(siteId)\(compatible ? "" : " — not on the compatibility list for reset")")
    }
}
