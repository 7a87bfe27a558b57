import Configuration
import Foundation
import LatchkeyProtocol
import Logging

/// Every setting of `latchkey serve`, read once at start.
public struct LatchkeyConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var database: DatabaseLocation = .sqliteFile(path: ".latchkey/latchkey.sqlite")
    public var windows = ResetWindows.standard
    /// bcrypt's cost; tests lower it, production keeps 12.
    public var bcryptCost: UInt8 = 12
    public var sessionLifetime: TimeInterval = 30 * 24 * 60 * 60
    public var sweepInterval: Duration = .seconds(10)
    public var keepAliveInterval: Duration = .seconds(15)
    /// How often this node writes that it is alive: what keeps the devices it holds online on every node.
    public var deviceHeartbeatInterval: Duration = .seconds(10)
    /// A device channel silent this long is pinged. Longer than the device's own heartbeat (60 s), so a healthy device
    /// is never pinged: its pings, answered on the event loop (`ChannelHeartbeat`), are all an idle channel costs.
    public var channelPingInterval: Duration = .seconds(75)
    /// A pinged channel that answers nothing within this is closed and its device written offline: a device that lost
    /// power reads offline within 100 s (75 + 15, each up to a third of this late: `ChannelSilenceWatch`).
    public var channelPingAnswerTimeout: Duration = .seconds(15)
    public var logLevel: Logger.Level = .info
    /// The manufacturer roots a device's certificate chain must verify to; none trusted, no device connects.
    public var manufacturerRoots = ManufacturerRoots(certificates: [])
    /// The platform's Ed25519 signing key, PKCS#8 PEM, mode 0600; created on first start. Never in the database.
    public var signingKeyFile = ".latchkey/platform-signing-key.pem"
    /// After a rotation, the key devices pinned before it: the platform signs the new key's introduction with it.
    public var previousSigningKeyFile: String?
    /// A device channel that has not said hello by then is closed.
    public var deviceHelloTimeout: Duration = .seconds(5)
    /// How long the platform waits for a device to answer a code check.
    public var deviceAnswerTimeout: Duration = .seconds(5)
    /// PEM files of the server's TLS certificate chain (P-256 or RSA: browsers refuse Ed25519) and its private key.
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// TLS ends at a reverse proxy in front: cookies are `Secure`, and the forwarded client address is taken from the
    /// proxies in `trustedProxies` only.
    public var behindProxy = false
    public var trustedProxies: Set<String> = []
    /// Plain HTTP on a non-loopback address, passwords and tokens in clear: only when told so.
    public var insecureHTTP = false
    /// The operator's token for `GET /metrics`; without one, only the server's own machine may scrape.
    public var metricsToken: String?
    /// The attempt limits (sign-in, sign-up, codes, grants): standard unless a benchmark says otherwise.
    public var rateLimits = RateLimitPolicy.standard
    /// Timeouts and sizes that drop slow or oversized clients.
    public var connectionLimits = ConnectionLimits()
    /// E-mail notifications, when the operator gives `--mail-from` (with `--public-url`); none otherwise.
    public var mail: MailSettings?

    /// Whether browsers reach the portal over HTTPS (directly or through the proxy), so cookies may be `Secure`.
    public var servesHTTPS: Bool { tlsCertificateFile != nil || behindProxy }

    public init() {}

    /// A configuration for tests: in-memory SQLite (or `DATABASE_URL`'s PostgreSQL), fast bcrypt.
    public static func testing(database: DatabaseLocation = .sqliteInMemory) -> LatchkeyConfiguration {
        var configuration = LatchkeyConfiguration()
        configuration.database = database
        configuration.bcryptCost = 4
        configuration.port = 0
        configuration.logLevel = .warning
        configuration.signingKeyFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(testingKeyFolderPrefix)\(UUID().uuidString)/platform-signing-key.pem").path
        return configuration
    }

    private static let testingKeyFolderPrefix = "latchkey-key-"

    /// Removes the folder `testing` made for the signing key, once the platforms using it are done: a test's private
    /// key does not outlive its test (test runs had left thousands of them in the temporary folder).
    public func removeTestingKeyFolder() {
        let folder = URL(fileURLWithPath: signingKeyFile).deletingLastPathComponent()
        guard folder.lastPathComponent.hasPrefix(Self.testingKeyFolderPrefix) else { return }
        try? FileManager.default.removeItem(at: folder)
    }
}

extension LatchkeyConfiguration {
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// Why the service cannot start: every bad setting at once, not the first only.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var problems: [String]
    public var description: String {
        "Latchkey cannot start:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension LatchkeyConfiguration {
    /// Reads flags, then the environment, then the defaults, through one reader.
    ///
    /// Keys: `host`, `port`, `data.dir`, `database.url` (`DATABASE_URL`), `on.site.window`, `off.site.window`,
    /// `log.level`, `manufacturer.roots`, `signing.key.file`, `previous.signing.key.file`, `mail.from` (`MAIL_FROM`),
    /// `sendmail`, `public.url` (`PUBLIC_URL`), and the others in `latchkey serve --help`; windows take `90s`, `5m`,
    /// `24h` or plain seconds.
    public init(reader: ConfigReader) throws {
        self.init()
        var problems: [String] = []
        host = reader.string(forKey: "host", default: host)
        if let text = reader.string(forKey: "port") {
            if let port = Int(text), (0...65535).contains(port) { self.port = port } else {
                problems.append("port '\(text)' is not a port number (0–65535).")
            }
        }
        if let url = reader.string(forKey: "database.url"), !url.isEmpty {
            if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
                database = .postgres(url: url)
            } else {
                problems.append("DATABASE_URL must start with postgres:// (got '\(url.prefix(20))…').")
            }
        }
        let directory = reader.string(forKey: "data.dir", default: ".latchkey")
        if case .sqliteFile = database {
            database = .sqliteFile(path: URL(fileURLWithPath: directory).appendingPathComponent("latchkey.sqlite").path)
        }
        signingKeyFile = reader.string(
            forKey: "signing.key.file", default: URL(fileURLWithPath: directory).appendingPathComponent("platform-signing-key.pem").path)
        previousSigningKeyFile = reader.string(forKey: "previous.signing.key.file")
        tlsCertificateFile = reader.string(forKey: "tls.cert").flatMap { $0.isEmpty ? nil : $0 }
        tlsKeyFile = reader.string(forKey: "tls.key").flatMap { $0.isEmpty ? nil : $0 }
        if (tlsCertificateFile == nil) != (tlsKeyFile == nil) { problems.append("tls-cert and tls-key go together: give both or neither.") }
        // Switches arrive as text from flags and the environment alike.
        func switchedOn(_ key: ConfigKey) -> Bool { ["1", "true", "yes"].contains(reader.string(forKey: key)?.lowercased() ?? "") }
        behindProxy = switchedOn("behind.proxy")
        insecureHTTP = switchedOn("insecure.http")
        trustedProxies = Set((reader.string(forKey: "trusted.proxy") ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty })
        if behindProxy && trustedProxies.isEmpty { problems.append("behind-proxy needs --trusted-proxy with the proxy's address.") }
        if !Self.isLoopback(host) && tlsCertificateFile == nil && !behindProxy && !insecureHTTP {
            problems.append(
                "host \(host) is not a loopback address, and without TLS passwords, tokens and cookies would cross the network in clear: "
                    + "give --tls-cert and --tls-key, or --behind-proxy (with --trusted-proxy) when TLS ends at a reverse proxy, "
                    + "or --insecure-http if you really mean it.")
        }
        if let text = reader.string(forKey: "rate.limits"), !text.isEmpty {
            if let policy = RateLimitPolicy(text) { rateLimits = policy } else {
                problems.append("rate-limits '\(text)' is not standard, off, or xN (each limit N times the standard).")
            }
        }
        if let file = reader.string(forKey: "metrics.token.file"), !file.isEmpty {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
                case let token = text.trimmingCharacters(in: .whitespacesAndNewlines), token.count >= 16 {
                metricsToken = token
            } else {
                problems.append("metrics-token-file \(file): not readable, or holds fewer than 16 characters.")
            }
        }
        if let roots = reader.string(forKey: "manufacturer.roots"), !roots.isEmpty {
            do { manufacturerRoots = try ManufacturerRoots(path: roots) } catch {
                problems.append("manufacturer-roots '\(roots)': \(error)")
            }
        }
        for (key, keyPath) in [("on.site.window", \ResetWindows.onSite), ("off.site.window", \ResetWindows.offSite)] {
            guard let text = reader.string(forKey: ConfigKey(key)) else { continue }
            if let seconds = TimeText.seconds(text) { windows[keyPath: keyPath] = seconds } else {
                problems.append("\(key.replacingOccurrences(of: ".", with: "-")) '\(text)' is not a duration such as 90s, 5m or 24h.")
            }
        }
        if let from = reader.string(forKey: "mail.from"), !from.isEmpty {
            let sendmail = reader.string(forKey: "sendmail", default: "/usr/sbin/sendmail")
            let publicURL = reader.string(forKey: "public.url").flatMap(URL.init(string:))
            if MailAddress(from) == nil { problems.append("mail-from '\(from)' is not an e-mail address.") }
            if !FileManager.default.isExecutableFile(atPath: sendmail) {
                problems.append("sendmail \(sendmail) is not an executable: install a local MTA or msmtp, or name it with --sendmail.")
            }
            if let publicURL, ["http", "https"].contains(publicURL.scheme ?? ""), publicURL.host != nil {
                mail = MailSettings(from: from, sendmail: sendmail, publicURL: publicURL)
            } else {
                problems.append("mail-from needs --public-url, the address people open the portal at (https://latchkey.example.com): "
                    + "the links in e-mails start with it.")
            }
        }
        if let text = reader.string(forKey: "channels.per.address"), !text.isEmpty {
            if let limit = Int(text), limit > 0 { connectionLimits.channelsPerAddress = limit } else {
                problems.append("channels-per-address '\(text)' is not a whole number above 0.")
            }
        }
        if let text = reader.string(forKey: "log.level") {
            if let level = Logger.Level(rawValue: text) { logLevel = level } else {
                problems.append("log-level '\(text)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
        }
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
    }
}
