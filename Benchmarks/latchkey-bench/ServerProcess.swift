import AsyncHTTPClient
import Foundation
import Synchronization
import LatchkeyCloud
import LatchkeyProtocol

/// `latchkey serve` in its own process, so that its CPU time is the server's alone (`/proc/<pid>/stat`), not the load
/// generator's beside it.
final class ServerProcess: @unchecked Sendable {
    let process: Process
    let base: String

    /// Starts `latchkey` (built beside this benchmark, unless `executable` names another build) on `port` over the data a
    /// fixture was written to; `https` when `arguments` give it a certificate.
    init(port: Int, data: BenchData, arguments: [String] = [], scheme: String = "http", executable: URL? = nil) throws {
        let executable = executable ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("latchkey")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw Load.Failure(description: "\(executable.path) is missing: build every product (swift build -c release), not the benchmark alone")
        }
        process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--port", String(port), "--data-dir", data.folder.path, "--rate-limits", "off", "--log-level", "error"]
            + (data.postgresURL.map { ["--database-url", $0] } ?? []) + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = data.postgresURL ?? ""
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        Children.started(process)
        base = "\(scheme)://127.0.0.1:\(port)"
    }

    /// User and system CPU seconds the server has used so far.
    var cpuSeconds: Double { Self.cpuSeconds(of: process.processIdentifier) }

    /// User and system CPU seconds process `pid` has used so far.
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is 3rd, utime 14th, stime 15th (1-based, whole line).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
    }

    /// SIGTERM, or SIGKILL as a crash would (no goodbye to the devices); returns once it has ended.
    func stop(_ signal: Int32 = SIGTERM) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    /// Resident memory, from `/proc/<pid>/status`.
    var residentMiB: Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib / 1024
    }
}

/// The processes the benchmark started (servers, nginx), so that an interrupted run stops them instead of leaving them
/// on their ports for the next run to trip over.
enum Children {
    private static let running = Mutex<Set<Int32>>([])

    static func started(_ process: Process) { running.withLock { _ = $0.insert(process.processIdentifier) } }

    /// On Ctrl-C or `timeout`'s SIGTERM: SIGTERM to every child still there, then end as the signal would. Keep what it
    /// returns for as long as the run lasts.
    static func stopOnInterrupt() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                for pid in running.withLock({ $0 }) { kill(pid, SIGTERM) }
                exit(128 + signalNumber)
            }
            source.resume()
            return source
        }
    }
}

/// Where one measurement keeps its data: a folder of its own (the SQLite file in it), or the PostgreSQL database given.
/// A fixture is written there by an in-process service, then `latchkey serve` opens the same data in its own process.
struct BenchData: Sendable {
    let folder: URL
    let location: DatabaseLocation

    init(_ location: DatabaseLocation, folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.folder = folder
        if case .sqliteFile = location {
            self.location = .sqliteFile(path: folder.appendingPathComponent("latchkey.sqlite").path)
        } else {
            self.location = location
        }
    }

    var postgresURL: String? {
        if case .postgres(let url) = location { url } else { nil }
    }

    /// The `serve` arguments that make it trust `authority`'s devices (its roots written in this data's folder).
    func trusting(_ authority: ManufacturerAuthority) throws -> [String] {
        let rootsFile = folder.appendingPathComponent("manufacturer-roots.pem")
        try Data(authority.rootsPEM.utf8).write(to: rootsFile)
        return ["--manufacturer-roots", rootsFile.path]
    }

    /// `write`'s fixture, made through an in-process service on this data (test bcrypt cost, limits off) that stops after.
    func writeFixture<Fixture: Sendable>(port: Int, client: HTTPClient, _ write: (Platform, Load) async throws -> Fixture)
        async throws -> Fixture
    {
        var configuration = LatchkeyConfiguration.testing(database: location)
        defer { configuration.removeTestingKeyFolder() }
        configuration.port = port
        configuration.logLevel = .error
        configuration.rateLimits = .off
        let platform = try await buildPlatform(configuration)
        let service = Task { try await platform.application.runService(gracefulShutdownSignals: []) }
        defer { service.cancel() }
        let load = Load(client: client, base: "http://127.0.0.1:\(port)", seconds: 0, concurrency: 1)
        try await load.waitUntilUp()
        let fixture = try await write(platform, load)
        service.cancel()
        _ = await service.result
        return fixture
    }
}

extension Load {
    /// The server's `GET /metrics` (asked from loopback, as the operator's own machine), by series as written there
    /// (`name` or `name{labels}`).
    func metrics() async throws -> [String: Double] {
        let response = try await client.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 16 * 1024 * 1024))
        var metrics: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            metrics[String(line[..<space])] = value
        }
        return metrics
    }
}
