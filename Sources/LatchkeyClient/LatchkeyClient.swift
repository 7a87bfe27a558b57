import AsyncHTTPClient
import Crypto
import Foundation
import LatchkeyProtocol
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The Latchkey service as an app sees it: every call of the HTTP API, typed, with a bearer token once signed in.
///
/// Imports `LatchkeyProtocol` only, never the service; an iOS or Swift app embeds it the same way the CLI does.
public struct LatchkeyClient: Sendable {
    public let server: String
    public var token: String?
    /// The manufacturer roots the app trusts: the only source of a device's keys it seals to and checks proofs with.
    public var manufacturerRoots: ManufacturerRoots?
    let transport: HTTPTransport

    /// `httpClient` carries the TLS trust (`ClientTLS.httpClient(caFile:)` for a private CA).
    public init(server: String, token: String? = nil, manufacturerRoots: ManufacturerRoots? = nil, httpClient: HTTPClient = .shared) {
        let server = Self.serviceURL(server)
        self.server = server
        self.token = token
        self.manufacturerRoots = manufacturerRoots
        self.transport = HTTPTransport(baseURL: server + "/api/v1", client: httpClient)
    }

    /// The service's address as people type it: without a scheme, loopback is `http://` and anything else `https://`
    /// (a service off loopback refuses plain HTTP); no trailing slash.
    public static func serviceURL(_ text: String) -> String {
        var text = text.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        guard !text.contains("://") else { return text }
        let host = text.split(separator: ":").first.map(String.init) ?? text
        let loopback = host == "localhost" || host.hasPrefix("127.") || text.hasPrefix("[::1]")
        return (loopback ? "http://" : "https://") + text
    }

    private func signedIn() throws(ClientError) -> String {
        guard let token else { throw .notSignedIn }
        return token
    }

    // MARK: - Accounts

    public func signUp(_ form: API.SignUp) async throws(ClientError) -> API.Account {
        try await transport.send(.POST, "/accounts", body: form)
    }

    public func signIn(email: String, password: String) async throws(ClientError) -> API.Session {
        try await transport.send(.POST, "/sessions", body: API.SignIn(email: email, password: password))
    }

    public func signOut() async throws(ClientError) {
        try await transport.send(.DELETE, "/sessions", token: try signedIn())
    }

    // MARK: - Sites and devices

    public func compatibility(model: String? = nil) async throws(ClientError) -> [API.CompatibilityEntry] {
        let query = model.flatMap { $0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) }.map { "?model=\($0)" } ?? ""
        return try await transport.send(.GET, "/compatibility" + query)
    }

    /// Every page of each list (the service answers 100 at a time).
    public func sites() async throws(ClientError) -> [API.Site] {
        try await transport.all("/sites", token: try signedIn())
    }

    public func site(_ id: UUID) async throws(ClientError) -> API.Site {
        try await transport.send(.GET, "/sites/\(id)", token: try signedIn())
    }

    public func createSite(name: String, address: String? = nil) async throws(ClientError) -> API.Site {
        try await transport.send(.POST, "/sites", token: try signedIn(), body: API.CreateSite(name: name, address: address))
    }

    public func authorize(site: UUID, installerEmail: String, permissions: [Permission], expiresAt: Date? = nil)
        async throws(ClientError) -> API.SiteAuthorization
    {
        try await transport.send(.POST, "/sites/\(site)/authorizations", token: try signedIn(),
                                 body: API.GrantAuthorization(installerEmail: installerEmail, permissions: permissions, expiresAt: expiresAt))
    }

    public func revoke(site: UUID, installer: UUID) async throws(ClientError) {
        try await transport.send(.DELETE, "/sites/\(site)/authorizations/\(installer)", token: try signedIn())
    }

    public func devices(site: UUID) async throws(ClientError) -> [API.Device] {
        try await transport.all("/sites/\(site)/devices", token: try signedIn())
    }

    public func bind(site: UUID, serial: String, verificationCode: String) async throws(ClientError) -> API.Device {
        try await transport.send(.POST, "/sites/\(site)/devices", token: try signedIn(),
                                 body: API.BindDevice(serial: serial, verificationCode: verificationCode))
    }

    public func device(_ serial: String) async throws(ClientError) -> API.DeviceDetail {
        try await transport.send(.GET, "/devices/\(Self.pathComponent(serial))", token: try signedIn())
    }

    /// The device as its manufacturer certified it: the platform hands over the chain, the app verifies it against
    /// its own roots and reads the keys from it. A platform that lies about a device's keys is caught here.
    public func certifiedDevice(_ serial: String) async throws(ClientError) -> AttestedDevice {
        guard let manufacturerRoots, !manufacturerRoots.certificates.isEmpty else {
            throw .untrustedDevice(
                "No manufacturer roots are configured, so device \(serial)'s keys cannot be checked: give --manufacturer-roots "
                    + "(or LATCHKEY_MANUFACTURER_ROOTS). Nothing was sealed.")
        }
        let detail = try await device(serial)
        guard let chain = detail.certificateChain else {
            throw .untrustedDevice("The platform gave no certificate for device \(serial): nothing was sealed.")
        }
        let attested: AttestedDevice
        do {
            attested = try await manufacturerRoots.attest(chainPEM: chain, now: Date())
        } catch {
            throw .untrustedDevice("Device \(serial)'s certificate is not trusted (\(error.description)): nothing was sealed.")
        }
        guard attested.serial == serial else {
            throw .untrustedDevice("The platform gave a certificate for device \(attested.serial), not \(serial): nothing was sealed.")
        }
        return attested
    }

    // MARK: - Password resets

    public func requestReset(serial: String, mode: ResetMode) async throws(ClientError) -> API.PasswordReset {
        try await transport.send(.POST, "/devices/\(Self.pathComponent(serial))/password-resets", token: try signedIn(),
                                 body: API.RequestPasswordReset(mode: mode))
    }

    public func resets(status: ResetStatus? = nil) async throws(ClientError) -> [API.PasswordReset] {
        try await transport.all("/password-resets" + (status.map { "?status=\($0.rawValue)" } ?? ""), token: try signedIn())
    }

    public func reset(_ id: UUID) async throws(ClientError) -> API.PasswordReset {
        try await transport.send(.GET, "/password-resets/\(id)", token: try signedIn())
    }

    /// Checks the policy, seals the new password to the device's own key, and approves: the service only ever sees
    /// the sealed form.
    public func approveReset(_ id: UUID, newPassword: String) async throws(ClientError) -> API.PasswordReset {
        do { try PasswordPolicy.device.check(newPassword) } catch { throw .weakPassword(error.description) }
        let request = try await reset(id)
        let device = try await certifiedDevice(request.deviceSerial)
        guard let sealed = try? PasswordSeal.seal(newPassword, to: device.agreementKey, requestId: id, serial: device.serial) else {
            throw .unexpectedAnswer("the device's key cannot be used for sealing")
        }
        return try await transport.send(.POST, "/password-resets/\(id)/approve", token: try signedIn(),
                                        body: API.ApprovePasswordReset(sealedPassword: sealed))
    }

    public func declineReset(_ id: UUID) async throws(ClientError) -> API.PasswordReset {
        try await transport.send(.POST, "/password-resets/\(id)/decline", token: try signedIn())
    }

    public func cancelReset(_ id: UUID) async throws(ClientError) -> API.PasswordReset {
        try await transport.send(.POST, "/password-resets/\(id)/cancel", token: try signedIn())
    }

    public func grant(_ id: UUID, proof: ProximityProof) async throws(ClientError) -> API.Grant {
        try await transport.send(.POST, "/password-resets/\(id)/grant", token: try signedIn(), body: API.GrantRequest(proximityProof: proof))
    }

    /// The browser path from an app: the code the device's own page showed; the service delivers over the device's
    /// channel and answers the completed request.
    public func deliverWithPresenceCode(_ id: UUID, code: String) async throws(ClientError) -> API.PasswordReset {
        try await transport.send(.POST, "/password-resets/\(id)/presence", token: try signedIn(),
                                 body: API.PresenceCodeDelivery(presenceCode: code))
    }

    public func deliverReceipt(_ receipt: ResetReceipt) async throws(ClientError) -> API.PasswordReset {
        try await transport.send(.POST, "/password-resets/\(receipt.requestId)/receipt", token: try signedIn(),
                                 body: API.ReceiptDelivery(receipt: receipt))
    }

    // MARK: - Notifications

    /// A device's history under the owner's binding (owners).
    public func audit(device serial: String) async throws(ClientError) -> [API.AuditEntry] {
        try await transport.send(.GET, "/devices/\(Self.pathComponent(serial))/audit", token: try signedIn())
    }

    /// A site's history (its owner).
    public func audit(site: UUID) async throws(ClientError) -> [API.AuditEntry] {
        try await transport.send(.GET, "/sites/\(site)/audit", token: try signedIn())
    }

    public func notifications(category: NotificationCategory? = nil) async throws(ClientError) -> [API.Notification] {
        try await transport.all("/notifications" + (category.map { "?category=\($0.rawValue)" } ?? ""), token: try signedIn())
    }

    public func markRead(_ id: UUID) async throws(ClientError) -> API.Notification {
        try await transport.send(.POST, "/notifications/\(id)/read", token: try signedIn())
    }

    /// New notifications as they happen (server-sent events), until the stream or the task ends.
    public func notificationStream() throws(ClientError) -> AsyncThrowingStream<API.Notification, any Error> {
        let token = try signedIn()
        let url = transport.baseURL + "/notifications/stream"
        let client = transport.client
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    var request = HTTPClientRequest(url: url)
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    let response = try await client.execute(request, timeout: .hours(24 * 365))
                    guard response.status == .ok else { throw ClientError.unreachable("The notification stream answered \(response.status).") }
                    var pending = ""
                    for try await chunk in response.body {
                        pending += String(buffer: chunk)
                        while let end = pending.range(of: "\n\n") {
                            let event = pending[..<end.lowerBound]
                            pending = String(pending[end.upperBound...])
                            guard let data = event.split(separator: "\n").first(where: { $0.hasPrefix("data: ") })?.dropFirst(6),
                                let notification = try? WireCoding.makeDecoder().decode(API.Notification.self, from: Data(data.utf8))
                            else { continue }
                            continuation.yield(notification)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func pathComponent(_ text: String) -> String {
        // A serial is letters, digits and dashes, which never need escaping (RFC 3986's unreserved characters): taken
        // as it is, without the character set Foundation builds and the escaping it does on each call (1.2 % of the
        // flow benchmark's load CPU).
        let unreserved = text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                true
            default: false
            }
        }
        if unreserved { return text }
        return text.addingPercentEncoding(withAllowedCharacters: Self.pathAllowed) ?? text
    }

    private static let pathAllowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))
}
