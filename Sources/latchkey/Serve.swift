import ArgumentParser
import Hummingbird
import Foundation
import LatchkeyCloud
import LatchkeyProtocol
import Logging
import NIOCore

/// `latchkey serve`: each setting from its flag, else the environment (`PORT`, `DATABASE_URL`, …), else its default.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Latchkey cloud service (HTTP API) on this machine.",
        discussion: """
            Uses an SQLite file under --data-dir unless DATABASE_URL names a PostgreSQL database.
            Every flag can also come from the environment: HOST, PORT, DATA_DIR, DATABASE_URL, ON_SITE_WINDOW,
            OFF_SITE_WINDOW, LOG_LEVEL, MANUFACTURER_ROOTS, SIGNING_KEY_FILE, PREVIOUS_SIGNING_KEY_FILE, TLS_CERT, TLS_KEY,
            BEHIND_PROXY, TRUSTED_PROXY (comma-separated), INSECURE_HTTP, METRICS_TOKEN_FILE, RATE_LIMITS.
            On an address other than loopback it refuses to start without TLS, --behind-proxy or --insecure-http.
            """
    )

    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (default 8080).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Folder for the SQLite database (default ./.latchkey).") var dataDir: String?
    @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/database") var databaseURL: String?
    @Option(name: .customLong("on-site-window"), help: "How long an on-site request stays open (default 5m).") var onSiteWindow: String?
    @Option(name: .customLong("off-site-window"), help: "How long an off-site request stays open (default 24h).") var offSiteWindow: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).") var logLevel: String?
    @Option(name: .customLong("manufacturer-roots"), help: "PEM file (or folder of them) of the manufacturer roots devices must chain to.")
    var manufacturerRoots: String?
    @Option(name: .customLong("signing-key-file"), help: "The platform's signing key, mode 0600 (default DATA_DIR/platform-signing-key.pem).")
    var signingKeyFile: String?
    @Option(name: .customLong("previous-signing-key-file"), help: "After a rotation: the key devices pinned before it.")
    var previousSigningKeyFile: String?
    @Option(name: .customLong("tls-cert"), help: "PEM of the server's TLS certificate chain (P-256 or RSA).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM of the TLS certificate's private key.") var tlsKey: String?
    @Flag(name: .customLong("behind-proxy"), help: "TLS ends at a reverse proxy in front of this service.") var behindProxy = false
    @Option(name: .customLong("trusted-proxy"), help: "The proxy's address, whose X-Forwarded-For is believed (repeatable).")
    var trustedProxy: [String] = []
    @Flag(name: .customLong("insecure-http"), help: "Serve plain HTTP on a non-loopback address (passwords in clear).")
    var insecureHTTP = false
    @Option(name: .customLong("metrics-token-file"),
            help: "File holding the token GET /metrics asks for (Authorization: Bearer); without it, only this machine may scrape.")
    var metricsTokenFile: String?
    @Option(name: .customLong("rate-limits"),
            help: "standard (default), xN (each limit N times: load tests from one address), or off (measuring only).")
    var rateLimits: String?
    @Option(name: .customLong("channels-per-address"),
            help: "Device channels one source address may hold (default 1000): a site with more devices behind one NAT address needs more.")
    var channelsPerAddress: String?
    @Option(name: .customLong("mail-from"), help: "Send e-mail notifications from this address (needs --public-url).")
    var mailFrom: String?
    @Option(help: "The sendmail interface mails go through: a local MTA's or msmtp's (default /usr/sbin/sendmail).")
    var sendmail: String?
    @Option(name: .customLong("public-url"), help: "Where people open the portal (https://latchkey.example.com): links in e-mails.")
    var publicURL: String?
    @Flag(help: "Also seed a demo owner, installer and site, and run three emulated devices on loopback.") var demo = false
    @Flag(name: .customLong(Serve.separateExecutorFlag),
          help: "Run the service's tasks on Swift's own threads rather than on the event loops that serve its sockets (as before; for comparison).")
    var separateExecutor = false

    /// Read before the command is parsed too (`Entry`), where the choice of executor has to be made.
    static let separateExecutorFlag = "separate-executor"

    func run() async throws {
        let flags: [(key: String, value: String?)] = [
            ("host", host), ("port", port.map(String.init)), ("data.dir", dataDir), ("database.url", databaseURL),
            ("on.site.window", onSiteWindow), ("off.site.window", offSiteWindow), ("log.level", logLevel),
            ("manufacturer.roots", manufacturerRoots), ("signing.key.file", signingKeyFile),
            ("previous.signing.key.file", previousSigningKeyFile), ("tls.cert", tlsCert), ("tls.key", tlsKey),
            ("behind.proxy", behindProxy ? "true" : nil), ("insecure.http", insecureHTTP ? "true" : nil),
            ("trusted.proxy", trustedProxy.isEmpty ? nil : trustedProxy.joined(separator: ",")),
            ("metrics.token.file", metricsTokenFile), ("rate.limits", rateLimits), ("mail.from", mailFrom),
            ("sendmail", sendmail), ("public.url", publicURL), ("channels.per.address", channelsPerAddress),
        ]
        // Whatever the service writes — database, key, demo identities — is the service user's alone.
        umask(0o077)
        let dataDirectory = dataDir ?? ProcessInfo.processInfo.environment["DATA_DIR"] ?? ".latchkey"
        var demoAuthority: ManufacturerAuthority?
        if demo {
            demoAuthority = try Demo.manufacturer(in: dataDirectory)
        }
        var configuration: LatchkeyConfiguration
        do {
            configuration = try readConfiguration(flags: flags)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        if let demoAuthority {
            // The demo's own manufacturer is trusted beside any the operator named.
            configuration.manufacturerRoots = ManufacturerRoots(
                certificates: configuration.manufacturerRoots.certificates + [demoAuthority.root])
        }
        Self.raiseOpenFileLimit(logger: Logger(label: "latchkey"))
        let platform: Platform
        do {
            platform = try await buildPlatform(configuration)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        guard let demoAuthority else { return try await Self.listening(port: configuration.port) { try await platform.application.runService() } }
        let scheme = configuration.tlsCertificateFile == nil ? "http" : "https"
        let demo = Demo(server: "\(scheme)://\(configuration.host):\(configuration.port)", dataDirectory: dataDirectory,
                        authority: demoAuthority, platformKey: Base64URL.encode(platform.signingKey.publicKey.rawRepresentation),
                        logger: Logger(label: "latchkey-demo"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let port = configuration.port
            group.addTask { try await Self.listening(port: port) { try await platform.application.runService() } }
            group.addTask { try await demo.run() }
            // The service stopping (SIGTERM, Ctrl-C) ends the demo devices with it.
            try await group.next()
            group.cancelAll()
        }
    }

    /// Every connection (devices, streams, requests) is an open file: raise the soft limit to the hard one, and say
    /// what it is, so an operator knows how many the service can hold.
    static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let before = limit.rlim_cur
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 { limit.rlim_cur = before }
        }
        logger.info("Open-file limit", metadata: ["limit": "\(limit.rlim_cur)", "was": "\(before)", "hard": "\(limit.rlim_max)"])
    }

    /// Runs the service; a port another process holds is said in one line and a non-zero exit.
    static func listening(port: Int, _ run: @Sendable () async throws -> Void) async throws {
        do {
            try await run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw CLIError("port \(port) is in use: stop what holds it, or choose another with --port.")
        }
    }
}
