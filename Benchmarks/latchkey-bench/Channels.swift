import ArgumentParser
import AsyncHTTPClient
import Foundation
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Logging
import NIOSSL

/// Thousands of devices holding their channel to one `latchkey serve` (SQLite, its own process), each with its own
/// manufacturer-issued identity and the real handshake (challenge, signed hello with the certificate chain, the
/// platform's signed welcome). Measured: the server's CPU per handshake, its memory and CPU per idle channel, and how
/// the devices come back after the server is killed and started again (jittered backoff). The devices reach the node
/// over plain `ws`, over `wss` ended by the node, or over plain `ws` through nginx (`Transport`).
struct ChannelScale {
    let client: HTTPClient
    let channels: Int
    let idleSeconds: Double
    let transport: Transport
    /// How often each device pings the node.
    let heartbeat: Duration
    /// nil: the `latchkey` built beside this benchmark.
    var executable: URL?
    static let openChannels = "latchkey_device_channels"
    /// New channels a second while the fleet first comes online.
    static let connectRate = 200.0

    struct Result {
        var backend: String
        var transport: Transport
        var heartbeat: Duration
        var channels: Int
        var issueSeconds: Double
        var connectSeconds: Double
        var handshakeMilliseconds: Double
        var memoryBeforeMiB: Double
        var memoryAfterMiB: Double
        var idleMicrosecondsPerChannelMinute: Double
        var idleCoreShare: Double
        /// Seconds from the new server answering until half, 99 % and all of the devices were back.
        var reconnect: (half: Double, most: Double, all: Double)
        var reconnectHandshakeMilliseconds: Double
        /// The proxy's own CPU (all its processes), when there is one: per handshake, and per channel per idle minute.
        var proxy: (handshakeMilliseconds: Double, idleMicrosecondsPerChannelMinute: Double)?
    }

    /// On one backend; PostgreSQL starts from the devices the database already holds (each run adds its own).
    func run(backend name: String, location: DatabaseLocation, directory: URL, port: Int) async throws -> Result {
        // Letters, digits, `-` and `_` only: nginx's configuration names paths in this folder unquoted, and a compared
        // build's name ("SQLite, /tmp/latchkey-…") has a comma and a space.
        let safeName = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
        let folder = "channels-\(safeName)-\(transport.rawValue)"
        let data = try BenchData(location, folder: directory.appendingPathComponent(folder))
        let authority = try ManufacturerAuthority.create(name: "Latchkey Bench Fleet")
        let front = try FleetFront(transport, folder: data.folder, port: port)
        defer { front.stop() }
        let arguments = try data.trusting(authority) + ["--channels-per-address", String(channels + 100)] + front.serveArguments

        print("Issuing \(channels) device identities (\(name))…")
        let tag = UUID().uuidString.prefix(8)
        let issueStarted = ContinuousClock.now
        var logger = Logger(label: "latchkey-bench-fleet")
        logger.logLevel = ProcessInfo.processInfo.environment["BENCH_FLEET_LOG"] == nil ? .critical : .info
        var runners: [DeviceRunner] = []
        for index in 0..<channels {
            let serial = "FLEET-\(tag)-\(index)"
            let configuration = DeviceConfiguration(
                identity: try authority.issue(serial: serial, model: "DS-2CD2143G2-I"), deviceType: .camera, firmware: "V5.7.3",
                cloudURL: front.deviceURL, listenHost: "127.0.0.1", listenPort: 0,
                stateDirectory: data.folder.appendingPathComponent("devices/\(serial)").path, adminPassword: "Vecchia2023",
                caFile: front.caFile)
            runners.append(try DeviceRunner(configuration: configuration, logger: logger, heartbeat: heartbeat))
        }
        let issueSeconds = (ContinuousClock.now - issueStarted).seconds

        var server = try ServerProcess(port: front.nodePort, data: data, arguments: arguments, scheme: front.scheme, executable: executable)
        defer { server.stop() }
        let load = Load(client: front.client ?? client, base: server.base, seconds: 0, concurrency: 1)
        try await load.waitUntilUp()
        try await front.start()
        let memoryBefore = server.residentMiB
        let cpuBefore = server.cpuSeconds
        let proxyCPUBefore = front.proxyCPUSeconds
        print("Connecting \(channels) channels…")
        let connectStarted = ContinuousClock.now
        // Switched on at `connectRate` a second, as a fleet comes online (after a restart they come back all at once).
        var fleet: [Task<Void, any Error>] = []
        defer { fleet.forEach { $0.cancel() } }
        for (index, runner) in runners.enumerated() {
            fleet.append(Task { try await runner.runChannelOnly() })
            if index % 100 == 99 { try await Task.sleep(until: connectStarted + .seconds(Double(index + 1) / Self.connectRate)) }
        }
        _ = try await waitForChannels(channels, load: load, since: connectStarted)
        let connectSeconds = (ContinuousClock.now - connectStarted).seconds
        let handshakeCPU = server.cpuSeconds - cpuBefore
        let proxyHandshakeCPU = front.proxyCPUSeconds - proxyCPUBefore

        print("Holding them idle for \(Int(idleSeconds)) s…")
        try await Task.sleep(for: .seconds(5))
        let idleCPUBefore = server.cpuSeconds
        let proxyIdleCPUBefore = front.proxyCPUSeconds
        try await Task.sleep(for: .seconds(idleSeconds))
        let idleCPU = server.cpuSeconds - idleCPUBefore
        let proxyIdleCPU = front.proxyCPUSeconds - proxyIdleCPUBefore
        let memoryAfter = server.residentMiB

        print("Killing the server and starting it again…")
        server.stop(SIGKILL)
        server = try ServerProcess(port: front.nodePort, data: data, arguments: arguments, scheme: front.scheme, executable: executable)
        let restarted = Load(client: front.client ?? client, base: server.base, seconds: 0, concurrency: 1)
        try await restarted.waitUntilUp()
        let upAt = ContinuousClock.now
        let reconnectCPUBefore = server.cpuSeconds
        let marks = try await waitForChannels(channels, load: restarted, since: upAt)
        let reconnectCPU = server.cpuSeconds - reconnectCPUBefore
        return Result(
            backend: name, transport: transport, heartbeat: heartbeat, channels: channels, issueSeconds: issueSeconds, connectSeconds: connectSeconds,
            handshakeMilliseconds: handshakeCPU * 1000 / Double(channels), memoryBeforeMiB: memoryBefore, memoryAfterMiB: memoryAfter,
            idleMicrosecondsPerChannelMinute: idleCPU * 1e6 / Double(channels) * (60 / idleSeconds), idleCoreShare: idleCPU / idleSeconds,
            reconnect: marks, reconnectHandshakeMilliseconds: reconnectCPU * 1000 / Double(channels),
            proxy: front.hasProxy
                ? (proxyHandshakeCPU * 1000 / Double(channels), proxyIdleCPU * 1e6 / Double(channels) * (60 / idleSeconds)) : nil)
    }

    /// Polls the server's `latchkey_device_channels` until `count` are open: seconds since `since` at half, 99 %, all.
    private func waitForChannels(_ count: Int, load: Load, since: ContinuousClock.Instant) async throws -> (half: Double, most: Double, all: Double) {
        var half: Double?
        var most: Double?
        var lastError: (any Error)?
        for _ in 0..<3000 {
            // A server busy with thousands of handshakes may answer late: ask again.
            do {
                let open = try await load.metrics()[Self.openChannels] ?? 0
                let elapsed = (ContinuousClock.now - since).seconds
                if half == nil, open >= Double(count) / 2 { half = elapsed }
                if most == nil, open >= Double(count) * 0.99 { most = elapsed }
                if open >= Double(count) { return (half ?? elapsed, most ?? elapsed, elapsed) }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Load.Failure(description: "only \((try? await load.metrics()[Self.openChannels]) ?? 0) of \(count) channels opened in 5 minutes"
            + (lastError.map { " (the node's metrics last answered: \($0))" } ?? ""))
    }

    static func report(_ result: Result, idleSeconds: Double) {
        print("""

            device channels on \(result.backend): \(result.channels) emulated devices in this process, each with its own certificate \
            chain, \(result.transport.description) to latchkey serve in its own process
            issuing the identities (bench side): \(String(format: "%.1f", result.issueSeconds)) s
            connect all, switched on at \(Int(connectRate)) a second (handshake with chain verification): \
            \(String(format: "%.1f", result.connectSeconds)) s, \
            server CPU \(String(format: "%.2f", result.handshakeMilliseconds)) ms per handshake
            server memory: \(String(format: "%.0f", result.memoryBeforeMiB)) MiB before, \(String(format: "%.0f", result.memoryAfterMiB)) MiB \
            holding them: \(String(format: "%.1f", (result.memoryAfterMiB - result.memoryBeforeMiB) * 1024 / Double(result.channels))) KiB per channel
            idle (\(Int(idleSeconds)) s, devices ping every \(result.heartbeat.seconds.formatted()) s): \(String(format: "%.1f", result.idleMicrosecondsPerChannelMinute)) µs CPU \
            per channel per minute = \(String(format: "%.1f", result.idleCoreShare * 100)) % of a core for all
            extrapolated to 100,000 channels: \(String(format: "%.1f", (result.memoryAfterMiB - result.memoryBeforeMiB) / Double(result.channels) * 100_000 / 1024)) GiB, \
            \(String(format: "%.1f", result.idleCoreShare * 100_000 / Double(result.channels) * 100)) % of a core at rest (goal ≤ 4 GiB, ≤ 10 %)
            after the server was killed and restarted: half back in \(String(format: "%.1f", result.reconnect.half)) s, 99 % in \
            \(String(format: "%.1f", result.reconnect.most)) s, all in \(String(format: "%.1f", result.reconnect.all)) s; \
            server CPU \(String(format: "%.2f", result.reconnectHandshakeMilliseconds)) ms per reconnection
            """)
        if let proxy = result.proxy {
            print("""
                the proxy's own CPU (nginx, all its processes): \(String(format: "%.2f", proxy.handshakeMilliseconds)) ms per handshake, \
                \(String(format: "%.1f", proxy.idleMicrosecondsPerChannelMinute)) µs per channel per idle minute
                """)
        }
    }
}

extension ChannelScale {
    /// How the fleet reaches the node.
    enum Transport: String, ExpressibleByArgument, CustomStringConvertible {
        /// Plain WebSocket straight to the node.
        case ws
        /// TLS ended by the node itself (`serve --tls-cert`), the devices trusting a private CA.
        case wss
        /// Plain WebSocket through nginx, the node started `--behind-proxy`.
        case proxy

        var description: String {
            switch self {
            case .ws: "plain ws"
            case .wss: "wss (TLS ended by the node, P-256 certificate from a private CA)"
            case .proxy: "plain ws through nginx"
            }
        }
    }
}

/// What stands between the fleet and the node: nothing, the node's own TLS (a private CA made with openssl), or nginx
/// on `port` passing WebSocket upgrades to the node on `port + 1000`.
final class FleetFront: @unchecked Sendable {
    let transport: ChannelScale.Transport
    let serveArguments: [String]
    let caFile: String?
    /// An HTTP client that trusts the private CA (for `wss`), to read the node's metrics.
    let client: HTTPClient?
    private let folder: URL
    private let port: Int
    private var nginx: Process?

    init(_ transport: ChannelScale.Transport, folder: URL, port: Int) throws {
        self.transport = transport
        self.folder = folder
        self.port = port
        switch transport {
        case .ws:
            (serveArguments, caFile, client) = ([], nil, nil)
        case .wss:
            let tls = try Self.makeCA(in: folder.appendingPathComponent("tls"))
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(tls.ca)
            serveArguments = ["--tls-cert", tls.certificate, "--tls-key", tls.key]
            caFile = tls.ca
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: configuration))
        case .proxy:
            (serveArguments, caFile, client) = (["--behind-proxy", "--trusted-proxy", "127.0.0.1"], nil, nil)
        }
    }

    var hasProxy: Bool { transport == .proxy }
    /// Where the node listens: behind nginx, a port of its own.
    var nodePort: Int { hasProxy ? port + 1000 : port }
    var scheme: String { transport == .wss ? "https" : "http" }
    /// Where the devices dial: the node, or nginx in front of it. Over TLS a name, as devices are given: the WebSocket
    /// client sends it as SNI, which an IP address may not be.
    var deviceURL: String { "\(scheme)://\(transport == .wss ? "localhost" : "127.0.0.1"):\(port)" }

    /// Starts nginx, once the node answers, and waits until it listens.
    func start() async throws {
        guard transport == .proxy else { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") else {
            throw Load.Failure(description: "the proxy measurement needs nginx: apt-get install nginx-light")
        }
        let prefix = folder.appendingPathComponent("nginx")
        try FileManager.default.createDirectory(at: prefix.appendingPathComponent("logs"), withIntermediateDirectories: true)
        // Four workers: each holds two descriptors per channel (the device's and the node's), and this box allows a
        // process 20,000.
        let configuration = """
            worker_processes 4;
            worker_rlimit_nofile 20000;
            pid \(prefix.path)/nginx.pid;
            error_log \(prefix.path)/logs/error.log warn;
            events { worker_connections 16000; }
            http {
                access_log off;
                client_body_temp_path \(prefix.path)/body;
                proxy_temp_path \(prefix.path)/proxy;
                map $http_upgrade $connection_upgrade { default upgrade; '' close; }
                server {
                    listen 127.0.0.1:\(port) backlog=4096;
                    location / {
                        proxy_pass http://127.0.0.1:\(nodePort);
                        proxy_http_version 1.1;
                        proxy_set_header Upgrade $http_upgrade;
                        proxy_set_header Connection $connection_upgrade;
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                        proxy_read_timeout 120s;
                    }
                }
            }
            """
        let file = prefix.appendingPathComponent("nginx.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-p", prefix.path, "-c", file.path, "-g", "daemon off;"]
        try process.run()
        Children.started(process)
        nginx = process
        for _ in 0..<100 {
            if (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8))?.contains(String(format: ":%04X 00000000:0000 0A", port)) == true {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Load.Failure(description: "nginx did not start listening on \(port): see \(prefix.path)/logs/error.log")
    }

    /// User and system CPU seconds of nginx's master and workers so far.
    var proxyCPUSeconds: Double {
        guard let nginx else { return 0 }
        let master = nginx.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(master)/task/\(master)/children", encoding: .utf8)) ?? ""
        return ([master] + children.split(separator: " ").compactMap { Int32($0) }).reduce(0) { $0 + ServerProcess.cpuSeconds(of: $1) }
    }

    func stop() {
        if let nginx, nginx.isRunning {
            nginx.terminate()
            nginx.waitUntilExit()
        }
        try? client?.syncShutdown()
    }

    /// A private CA and a certificate for 127.0.0.1 it signed (P-256): `scripts/private-ca.sh`, run from the package.
    private static func makeCA(in folder: URL) throws -> (ca: String, certificate: String, key: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "scripts/private-ca.sh")
        process.arguments = [folder.path, "Latchkey Bench CA"]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Load.Failure(description: "scripts/private-ca.sh could not make the benchmark's CA (run the benchmark from the package folder)")
        }
        return (folder.appendingPathComponent("ca.pem").path, folder.appendingPathComponent("server.pem").path,
                folder.appendingPathComponent("server.key").path)
    }
}
