import Foundation
import Hummingbird
import HummingbirdTesting
import LatchkeyCloud
import LatchkeyProtocol
import Logging
import NIOCore
import Testing

/// A fresh platform per test, on its own database, driven through the HTTP API like a client would.
struct TestPlatform {
    let platform: Platform
    let client: any TestClientProtocol
    let clock: ManualClock

    /// Builds the app on a new database and runs `body` against it; `.router` unless a test needs real sockets.
    static func run(
        _ mode: TestingSetup = .router, windows: ResetWindows = .standard,
        configure: @Sendable (inout LatchkeyConfiguration) -> Void = { _ in }, logger: Logger? = nil,
        _ body: @escaping @Sendable (TestPlatform) async throws -> Void
    ) async throws {
        try await TestDatabase.with { location in
            var configuration = LatchkeyConfiguration.testing(database: location)
            configuration.manufacturerRoots = TestManufacturer.trusted.roots
            configuration.windows = windows
            configuration.sweepInterval = .seconds(3600)
            // The node's heartbeat is frequent, so tests see liveness change in moments.
            configuration.deviceHeartbeatInterval = .milliseconds(500)
            // Channels are pinged every 5 s (a test of a hung device pings faster): a loaded run (CI: 40 tests at once on
            // 2 cores, on PostgreSQL) answered a 500 ms ping late, the channel was closed, and a bind that followed
            // found the device "offline" while it redialled.
            configuration.channelPingInterval = .seconds(5)
            configuration.channelPingAnswerTimeout = .seconds(5)
            configure(&configuration)
            let clock = ManualClock()
            var configured = configuration
            defer { configured.removeTestingKeyFolder() }
            if let logger { configured.logLevel = logger.logLevel }
            let platform = try await buildPlatform(configured, clock: clock.clock, logger: logger)
            try await platform.application.test(mode) { client in
                try await body(TestPlatform(platform: platform, client: client, clock: clock))
            }
        }
    }

    // MARK: - Requests

    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let body: ByteBuffer
        var headers = HTTPFields()

        func decode<T: Decodable>(_ type: T.Type = T.self, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
            do {
                return try WireCoding.makeDecoder().decode(T.self, from: Data(buffer: body))
            } catch {
                Issue.record("Could not decode \(T.self) from \(status): \(String(buffer: body))", sourceLocation: sourceLocation)
                throw error
            }
        }

        var errorCode: APIErrorCode? { (try? WireCoding.makeDecoder().decode(APIErrorBody.self, from: Data(buffer: body)))?.error.code }
        var errorMessage: String? { (try? WireCoding.makeDecoder().decode(APIErrorBody.self, from: Data(buffer: body)))?.error.message }
        var text: String { String(buffer: body) }
    }

    @discardableResult
    func call(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: String? = nil) async throws -> Answer {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }) {
            Answer(status: $0.status, body: $0.body, headers: $0.headers)
        }
    }

    @discardableResult
    func call(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, body: some Encodable) async throws -> Answer {
        let json = String(decoding: try WireCoding.makeEncoder().encode(body), as: UTF8.self)
        return try await call(method, path, token: token, json: json)
    }

    // MARK: - People and places

    struct Person: Sendable {
        let account: API.Account
        let token: String
        var id: UUID { account.id }
    }

    func signUp(_ role: AccountRole, email: String? = nil, name: String = "Test Person", language: Language? = nil) async throws -> Person {
        let email = email ?? "\(role.rawValue)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let password = "correct horse 1"
        let created = try await call(.post, "/api/v1/accounts",
                                     body: API.SignUp(email: email, password: password, name: name, role: role, language: language))
        #expect(created.status == .created)
        let session = try await call(.post, "/api/v1/sessions", body: API.SignIn(email: email, password: password))
        #expect(session.status == .created)
        let decoded: API.Session = try session.decode()
        return Person(account: decoded.account, token: decoded.token)
    }

    func createSite(by owner: Person, name: String = "Bar Centrale") async throws -> API.Site {
        let answer = try await call(.post, "/api/v1/sites", token: owner.token, body: API.CreateSite(name: name, address: "Via Roma 1, Milano"))
        #expect(answer.status == .created)
        return try answer.decode()
    }

    @discardableResult
    func authorize(_ installer: Person, on site: API.Site, by owner: Person, permissions: [Permission] = [.view, .passwordReset],
                   expiresAt: Date? = nil) async throws -> Answer {
        try await call(.post, "/api/v1/sites/\(site.id)/authorizations", token: owner.token,
                       body: API.GrantAuthorization(installerEmail: installer.account.email, permissions: permissions, expiresAt: expiresAt))
    }

    /// Devices arrive through their channel in a later issue; here they are put in place through the store.
    @discardableResult
    func addDevice(serial: String = "DS-7608NI-K2-\(UUID().uuidString.prefix(8))", model: String = "DS-7608NI-K2",
                   firmware: String = "V4.62.200", type: DeviceType = .nvr, on site: API.Site?) async throws -> Device {
        let identity = try TestManufacturer.trusted.issue(serial: serial, model: model, now: min(Date(), clock.now))
        let attested = try await TestManufacturer.trusted.roots.attest(chainPEM: identity.chain, now: clock.now)
        let device = Device(serial: serial, model: model, deviceType: type, firmware: firmware, siteId: site?.id, online: true,
                            identity: DeviceIdentity(attested), keysPinned: site != nil)
        try await platform.store.transaction { try await $0.devices.save(device) }
        return device
    }

    /// An owner, an authorized installer, a site and a compatible device on it: the start of every reset story.
    func resetScene(permissions: [Permission] = [.view, .passwordReset], ownerLanguage: Language? = nil,
                    installerLanguage: Language? = nil) async throws -> ResetScene {
        let owner = try await signUp(.owner, email: "lmrossi-\(UUID().uuidString.prefix(6).lowercased())@gmail.com", name: "Laura Rossi",
                                     language: ownerLanguage)
        let installer = try await signUp(.installer, name: "Ivan Installa", language: installerLanguage)
        let site = try await createSite(by: owner)
        #expect(try await authorize(installer, on: site, by: owner, permissions: permissions).status == .created)
        let device = try await addDevice(on: site)
        return ResetScene(owner: owner, installer: installer, site: site, device: device)
    }

    @discardableResult
    func requestReset(_ scene: ResetScene, mode: ResetMode = .offSite) async throws -> Answer {
        try await call(.post, "/api/v1/devices/\(scene.device.serial)/password-resets", token: scene.installer.token,
                       body: API.RequestPasswordReset(mode: mode))
    }

    func notifications(of person: Person, category: String? = nil) async throws -> [API.Notification] {
        try await call(.get, "/api/v1/notifications" + (category.map { "?category=\($0)" } ?? ""), token: person.token).decode()
    }
}

struct ResetScene: Sendable {
    let owner: TestPlatform.Person
    let installer: TestPlatform.Person
    let site: API.Site
    let device: Device
}

/// A well-formed sealed password: what an HPKE seal to the device key looks like on the wire.
let sampleSealedPassword = PasswordSeal.prefix + Base64URL.encode(Data((0..<80).map { UInt8($0) }))
