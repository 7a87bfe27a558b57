import ArgumentParser
import Hummingbird
import Foundation
import LatchkeyCloud
import Logging

/// `latchkey serve`: each setting from its flag, else the environment (`PORT`, `DATABASE_URL`, …), else its default.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Latchkey cloud service (HTTP API) on this machine.",
        discussion: """
            Uses an SQLite file under --data-dir unless DATABASE_URL names a PostgreSQL database.
            Every flag can also come from the environment: HOST, PORT, DATA_DIR, DATABASE_URL, ON_SITE_WINDOW,
            OFF_SITE_WINDOW, LOG_LEVEL.
            """
    )

    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (default 8080).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Folder for the SQLite database (default ./.latchkey).") var dataDir: String?
    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/database") var databaseURL: String?
    @Option(name: .customLong("on-site-window"), help: "How long an on-site request stays open (default 5m).") var onSiteWindow: String?
    @Option(name: .customLong("off-site-window"), help: "How long an off-site request stays open (default 24h).") var offSiteWindow: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).") var logLevel: String?
    @Flag(help: "Also seed a demo owner, installer and site, and run three emulated devices on loopback.") var demo = false

    func run() async throws {
        let flags: [(key: String, value: String?)] = [
            ("host", host), ("port", port.map(String.init)), ("data.dir", dataDir), ("database.url", databaseURL),
            ("on.site.window", onSiteWindow), ("off.site.window", offSiteWindow), ("log.level", logLevel),
        ]
        let configuration: LatchkeyConfiguration
        do {
            configuration = try readConfiguration(flags: flags)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        let platform = try await buildPlatform(configuration)
        guard demo else { return try await platform.application.runService() }
        let dataDirectory = dataDir ?? ProcessInfo.processInfo.environment["DATA_DIR"] ?? ".latchkey"
        let demo = Demo(server: "http://\(configuration.host):\(configuration.port)", dataDirectory: dataDirectory,
                        logger: Logger(label: "latchkey-demo"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await platform.application.runService() }
            group.addTask { try await demo.run() }
            // The service stopping (SIGTERM, Ctrl-C) ends the demo devices with it.
            try await group.next()
            group.cancelAll()
        }
    }
}
