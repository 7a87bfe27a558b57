import AsyncHTTPClient
import Foundation
import LatchkeyClient
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Logging

/// The whole reset, as the apps and devices do it, against `latchkey serve` in its own process: the installer asks,
/// the owner checks the device's certificate chain and seals the new password to it, then either
/// - **LAN proof** (off-site): the owner's app takes a proximity proof from the device, exchanges it for a grant, the
///   device applies it and signs a receipt, the app hands the receipt in (the device also reports it on its channel);
/// - **presence code** (on-site): the device hears the approval on its channel and shows a code, the installer types
///   it, the service delivers the grant over the channel and the device answers with its receipt.
/// Both sides are notified by the service. Devices are emulated in this process with their real keys and certificate
/// chains; the service's CPU per flow is read from its own process.
struct CompleteFlows {
    let client: HTTPClient
    let seconds: Double
    let rounds: Int
    /// Flows in flight at once, each on its own device.
    let concurrency: Int

    enum Path: String, CaseIterable {
        case lanProof = "LAN proof (off-site)"
        case presenceCode = "presence code over the channel (on-site)"
    }

    struct Result {
        var flowsPerSecond: Double
        var serverMillisecondsPerFlow: Double
        /// This process's CPU per flow: the apps, the emulated devices and their crypto, beside the server on the same cores.
        var loadMillisecondsPerFlow: Double
        var flows: Int

        /// Flows a second the server's CPU per flow would allow with every core of this machine to itself: what the box
        /// could serve were the load generator elsewhere.
        var serverAloneFlowsPerSecond: Double {
            Double(ProcessInfo.processInfo.activeProcessorCount) * 1000 / max(serverMillisecondsPerFlow, 0.001)
        }
    }

    /// Servers on one backend (two builds, say) are all started first, then measured in turn, round by round, in ABBA
    /// order: this machine's speed drifts over minutes, and the build measured first was also measured on a different
    /// machine, in effect (the same build measured 200 and 340 flows a second within one session).
    func run(servers: [Bench.MeasuredServer], directory: URL, port: Int) async throws -> [String: [Path: Result]] {
        var results: [String: [Path: Result]] = [:]
        for group in Bench.MeasuredServer.byBackend(servers) {
            var targets: [FlowTarget] = []
            defer { targets.forEach { $0.stop() } }
            for (index, measured) in group {
                print("Starting \(measured.name) for complete flows (server in its own process, \(concurrency) devices per path)…")
                targets.append(try await FlowTarget.start(
                    measured, client: client, devicesPerPath: concurrency, directory: directory.appendingPathComponent("flows-\(index)"),
                    port: port + index))
            }
            var measured: [String: [Path: [Result]]] = [:]
            for round in 0..<rounds {
                for path in Path.allCases {
                    for target in targets.inTurn(round: round) {
                        let result = try await measure(path, on: target)
                        measured[target.name, default: [:]][path, default: []].append(result)
                        // Each round too, so that two builds can be compared round by round, not only by their medians.
                        print(String(format: "round %d | %@ | %@ | %.1f flows/s | server %.2f ms CPU/flow | load %.2f ms CPU/flow", round + 1,
                                     path.rawValue, target.name, result.flowsPerSecond, result.serverMillisecondsPerFlow,
                                     result.loadMillisecondsPerFlow))
                    }
                }
            }
            for (name, paths) in measured {
                for (path, rounds) in paths {
                    results[name, default: [:]][path] = rounds.sorted { $0.serverMillisecondsPerFlow < $1.serverMillisecondsPerFlow }[rounds.count / 2]
                }
            }
        }
        return results
    }

    /// One round of `path` on `target`: each of its devices runs flows one after another for `seconds`.
    private func measure(_ path: Path, on target: FlowTarget) async throws -> Result {
        let cpuBefore = target.server.cpuSeconds
        let loadBefore = ServerProcess.cpuSeconds(of: getpid())
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        let (owner, installer) = (target.owner, target.installer)
        let flows = try await withThrowingTaskGroup(of: Int.self) { group in
            for device in target.devices[path] ?? [] {
                group.addTask {
                    var flows = 0
                    while ContinuousClock.now < deadline {
                        try await flow(path, device: device, owner: owner, installer: installer)
                        flows += 1
                    }
                    return flows
                }
            }
            return try await group.reduce(0, +)
        }
        let wall = (ContinuousClock.now - started).seconds
        let cpu = target.server.cpuSeconds - cpuBefore
        let load = ServerProcess.cpuSeconds(of: getpid()) - loadBefore
        return Result(flowsPerSecond: Double(flows) / wall, serverMillisecondsPerFlow: cpu * 1000 / Double(max(flows, 1)),
                      loadMillisecondsPerFlow: load * 1000 / Double(max(flows, 1)), flows: flows)
    }

    /// One reset from request to completion; fails unless the service says *completed*.
    private func flow(_ path: Path, device: EmulatedDevice, owner: LatchkeyClient, installer: LatchkeyClient) async throws {
        let serial = await device.serial
        let newPassword = "Nv-\(UUID().uuidString.prefix(10))"
        let request = try await installer.requestReset(serial: serial, mode: path == .lanProof ? .offSite : .onSite)
        let approved = try await owner.approveReset(request.id, newPassword: newPassword)
        let done: API.PasswordReset
        switch path {
        case .lanProof:
            // As `ResetCourier.carry` does, with the device's LAN API called in process: each courier is its own
            // source, as the people standing at different devices are.
            let certified = try await owner.certifiedDevice(serial)
            let proof = try await device.challenge(from: "courier-\(request.id)")
            guard proof.isSigned(by: certified.signingKey) else { throw Load.Failure(description: "\(serial)'s proof does not verify") }
            let grant = try await owner.grant(request.id, proof: proof)
            let receipt = try await device.applyReset(grant: grant.grant, sealedPassword: grant.sealedPassword)
            done = try await owner.deliverReceipt(receipt)
        case .presenceCode:
            // The device shows a code once the approval reached it over its channel.
            var code: LocalAPI.PresenceCode?
            for _ in 0..<500 where code?.requestId != approved.id {
                code = try? await device.presenceCode()
                if code?.requestId != approved.id { try await Task.sleep(for: .milliseconds(2)) }
            }
            guard let code, code.requestId == approved.id else {
                throw Load.Failure(description: "\(serial) never heard the approval of \(approved.id)")
            }
            done = try await installer.deliverWithPresenceCode(request.id, code: code.code)
        }
        guard done.status == .completed else { throw Load.Failure(description: "\(serial)'s reset ended \(done.status)") }
        // The device takes the new password (a wrong one throws).
        _ = try await device.login(username: "admin", password: newPassword, from: "bench")
    }

    static func report(_ results: [String: [Path: Result]], backends: [String], concurrency: Int) {
        print("\ncomplete flows: request → approve (sealed) → proof or presence code → grant → device applies → receipt → both notified;"
              + " \(concurrency) devices per path, the server's CPU from its own process, servers of a backend interleaved round by round (ABBA);"
              + " goal ≥ 300 flows/s on SQLite")
        print("load ms CPU/flow: this process (apps, emulated devices, their crypto) on the same cores as the server;"
              + " server alone: \(ProcessInfo.processInfo.activeProcessorCount) cores ÷ server CPU per flow")
        print((["path"] + backends.flatMap {
            ["\($0) flows/s", "\($0) server ms CPU/flow", "\($0) load ms CPU/flow", "\($0) server alone flows/s", "\($0) flows"]
        }).joined(separator: " | "))
        for path in Path.allCases {
            var row = [path.rawValue]
            for name in backends {
                let result = results[name]?[path]
                row += [String(format: "%.1f", result?.flowsPerSecond ?? 0), String(format: "%.2f", result?.serverMillisecondsPerFlow ?? 0),
                        String(format: "%.2f", result?.loadMillisecondsPerFlow ?? 0),
                        String(format: "%.0f", result?.serverAloneFlowsPerSecond ?? 0), String(result?.flows ?? 0)]
            }
            print(row.joined(separator: " | "))
        }
    }
}

/// A server measured by `CompleteFlows`, with its people and its emulated devices, each device connected and bound to
/// the owner's site; started once, measured round after round.
struct FlowTarget: Sendable {
    let name: String
    let server: ServerProcess
    let owner: LatchkeyClient
    let installer: LatchkeyClient
    let devices: [CompleteFlows.Path: [EmulatedDevice]]
    /// The devices' own tasks: their channels and LAN APIs.
    let running: [Task<Void, any Error>]

    static func start(_ measured: Bench.MeasuredServer, client: HTTPClient, devicesPerPath: Int, directory: URL, port: Int)
        async throws -> FlowTarget
    {
        let data = try BenchData(measured.location, folder: directory)
        let authority = try ManufacturerAuthority.create(name: "Latchkey Bench Devices")
        let server = try ServerProcess(port: port, data: data, arguments: try data.trusting(authority) + measured.serveArguments,
                                       executable: measured.executable)
        var running: [Task<Void, any Error>] = []
        do {
            let load = Load(client: client, base: server.base, seconds: 1, concurrency: 1)
            try await load.waitUntilUp()
            let tag = UUID().uuidString.prefix(8).lowercased()
            let installerEmail = "flow-installer-\(tag)@example.com"
            var owner = LatchkeyClient(server: server.base, manufacturerRoots: authority.roots, httpClient: client)
            owner.token = try await load.signUp(email: "flow-owner-\(tag)@example.com", role: .owner)
            var installer = LatchkeyClient(server: server.base, manufacturerRoots: authority.roots, httpClient: client)
            installer.token = try await load.signUp(email: installerEmail, role: .installer)
            let site = try await owner.createSite(name: "Bench site")
            _ = try await owner.authorize(site: site.id, installerEmail: installerEmail, permissions: [.view, .passwordReset])

            var logger = Logger(label: "latchkey-bench-device")
            logger.logLevel = .critical
            var devices: [CompleteFlows.Path: [EmulatedDevice]] = [:]
            for path in CompleteFlows.Path.allCases {
                for index in 0..<devicesPerPath {
                    let serial = "FLOW-\(tag)-\(path == .lanProof ? "L" : "P")\(index)"
                    let configuration = DeviceConfiguration(
                        identity: try authority.issue(serial: serial, model: "DS-7608NI-K2"), deviceType: .nvr, firmware: "V4.62.200",
                        cloudURL: server.base, listenHost: "127.0.0.1", listenPort: 0,
                        stateDirectory: directory.appendingPathComponent("devices/\(serial)").path, adminPassword: "Vecchia2023",
                        discoveryPort: 0, discoveryHost: "127.0.0.1")
                    let runner = try DeviceRunner(configuration: configuration, logger: logger)
                    running.append(Task { try await runner.run(handlingSignals: false) })
                    try await bindWhenConnected(serial: serial, device: runner.device, site: site, owner: owner)
                    devices[path, default: []].append(runner.device)
                }
            }
            return FlowTarget(name: measured.name, server: server, owner: owner, installer: installer, devices: devices, running: running)
        } catch {
            running.forEach { $0.cancel() }
            server.stop()
            throw error
        }
    }

    func stop() {
        running.forEach { $0.cancel() }
        server.stop()
    }

    private static func bindWhenConnected(serial: String, device: EmulatedDevice, site: API.Site, owner: LatchkeyClient) async throws {
        let code = await device.verificationCode
        for _ in 0..<200 {
            // Untyped, so that the refusal can be matched by code (a `catch … where` over a typed error crashes Swift 6.3).
            let bind: () async throws -> API.Device = { try await owner.bind(site: site.id, serial: serial, verificationCode: code) }
            do {
                _ = try await bind()
                return
            } catch let error as ClientError where error.code == .deviceOffline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        throw Load.Failure(description: "device \(serial) never connected")
    }
}
