import AsyncHTTPClient
import Crypto
import Foundation
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// An emulated device running in the test process against the test's platform, on the test's clock, and a client
/// standing on its LAN (loopback).
struct DeviceHarness: Sendable {
    let runner: DeviceRunner
    let task: Task<Void, any Error>
    let port: Int
    let verificationCode: String
    let stateDirectory: URL
    var device: EmulatedDevice { runner.device }
    var serial: String
    let identity: DeviceIdentityFile

    static func start(
        on app: TestPlatform, serial: String = "NVR-\(UUID().uuidString.prefix(8))", model: String = "DS-7608NI-K2",
        firmware: String = "V4.62.200", adminPassword: String? = "Vecchia2023", stateDirectory: URL? = nil,
        identity: DeviceIdentityFile? = nil, waitForConnection: Bool = true, logger: Logger = Logger(label: "latchkey-device")
    ) async throws -> DeviceHarness {
        let directory = stateDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-device-\(UUID())")
        let platformPort = try #require(app.client.port)
        let identity = try identity ?? TestManufacturer.trusted.issue(serial: serial, model: model, now: min(Date(), app.clock.now))
        let configuration = DeviceConfiguration(
            identity: identity, deviceType: .nvr, firmware: firmware, cloudURL: "http://127.0.0.1:\(platformPort)",
            listenHost: "127.0.0.1", listenPort: 0, stateDirectory: directory.path, adminPassword: adminPassword,
            discoveryPort: 0)
        let clock = app.clock
        let runner = try DeviceRunner(configuration: configuration, logger: logger, heartbeat: .seconds(5), now: { clock.now })
        let (ports, portSignal) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await runner.run(handlingSignals: false) { _, port in portSignal.yield(port) } }
        var listening: Int?
        for await port in ports {
            listening = port
            break
        }
        let harness = DeviceHarness(runner: runner, task: task, port: try #require(listening),
                                    verificationCode: await runner.device.verificationCode, stateDirectory: directory,
                                    serial: identity.serial, identity: identity)
        if waitForConnection { try await harness.waitUntilConnected(to: app) }
        return harness
    }

    /// Until the platform has heard the device's channel (since `freshAt`, when given) and the device knows the platform key.
    func waitUntilConnected(to app: TestPlatform, freshAt: Date? = nil) async throws {
        for _ in 0..<200 {
            let device = try await app.platform.store.read { [serial] in try await $0.devices.find(serial: serial) }
            if let device, device.isOnline(at: freshAt ?? app.clock.now), await runner.device.knowsPlatformKey { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("device \(serial) never connected")
    }

    /// The device's private key, read from its identity: what an attacker who cloned the device would hold.
    func privateSigningKeyFromState() throws -> Curve25519.Signing.PrivateKey {
        try identity.signingPrivateKey
    }

    func stop(removingState: Bool = true) async {
        task.cancel()
        // A device that does not stop within seconds is a failure to report, not a test run that never ends.
        let stopped = await withTaskGroup(of: Bool.self) { group in
            group.addTask { _ = await task.result; return true }
            group.addTask { try? await Task.sleep(for: .seconds(15)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !stopped { Issue.record("the emulated device \(serial) did not stop within 15 s of being cancelled") }
        if removingState { try? FileManager.default.removeItem(at: stateDirectory) }
    }

    // MARK: - The device's LAN API, as a courier's app calls it

    struct LocalAnswer: Sendable {
        let status: Int
        let body: Data
        func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T { try WireCoding.makeDecoder().decode(T.self, from: body) }
        var code: APIErrorCode? { (try? WireCoding.makeDecoder().decode(APIErrorBody.self, from: body))?.error.code }
        var message: String? { (try? WireCoding.makeDecoder().decode(APIErrorBody.self, from: body))?.error.message }
    }

    func local(_ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<String>.none,
               headers: [String: String] = [:], raw: String? = nil) async throws -> LocalAnswer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(LocalAPI.pathPrefix)/\(path)")
        request.method = method
        if method == .POST { request.headers.add(name: "Content-Type", value: "application/json") }
        if let body {
            request.body = .bytes(ByteBuffer(data: try WireCoding.makeEncoder().encode(body)))
        }
        if let raw { request.body = .bytes(ByteBuffer(string: raw)) }
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return LocalAnswer(status: Int(response.status.code), body: Data(buffer: bytes))
    }

    struct Page: Sendable {
        let status: Int
        let text: String
    }

    /// The device's own web page, as a browser on the LAN asks for it (a form post names its origin).
    func page(_ method: HTTPMethod, _ path: String, origin: String? = nil) async throws -> Page {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if method == .POST { request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded") }
        if let origin { request.headers.add(name: "Origin", value: origin) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Page(status: Int(response.status.code), text: String(buffer: bytes))
    }

    func proof() async throws -> ProximityProof {
        try await local(.POST, "challenge").decode()
    }

    func login(_ password: String) async throws -> Int {
        try await local(.POST, "login", body: LocalAPI.Login(username: "admin", password: password)).status
    }
}
