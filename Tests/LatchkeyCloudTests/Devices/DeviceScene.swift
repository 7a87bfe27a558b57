import Crypto
import Foundation
import Hummingbird
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Testing

/// An owner, an authorized installer, a site and a real emulated device connected and bound to it.
struct BoundDeviceScene: Sendable {
    let owner: TestPlatform.Person
    let installer: TestPlatform.Person
    let site: API.Site
    let device: DeviceHarness

    /// An owner and an authorized installer bind a device already running; nil when the platform could not bind it.
    static func bind(_ device: DeviceHarness, on app: TestPlatform) async throws -> BoundDeviceScene? {
        let owner = try await app.signUp(.owner, email: "lmrossi-\(UUID().uuidString.prefix(6).lowercased())@gmail.com", name: "Laura Rossi")
        let installer = try await app.signUp(.installer, name: "Ivan Installa")
        let site = try await app.createSite(by: owner)
        #expect(try await app.authorize(installer, on: site, by: owner).status == .created)
        let bound = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                       body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
        guard bound.status == .created else { return nil }
        return BoundDeviceScene(owner: owner, installer: installer, site: site, device: device)
    }

    static func start(on app: TestPlatform, adminPassword: String = "Vecchia2023") async throws -> BoundDeviceScene {
        let owner = try await app.signUp(.owner, email: "lmrossi-\(UUID().uuidString.prefix(6).lowercased())@gmail.com", name: "Laura Rossi")
        let installer = try await app.signUp(.installer, name: "Ivan Installa")
        let site = try await app.createSite(by: owner)
        #expect(try await app.authorize(installer, on: site, by: owner).status == .created)
        let device = try await DeviceHarness.start(on: app, adminPassword: adminPassword)
        let bound = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                       body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
        #expect(bound.status == .created, "\(bound.text)")
        return BoundDeviceScene(owner: owner, installer: installer, site: site, device: device)
    }

    /// The installer asks for a reset of the device.
    func requestReset(on app: TestPlatform, mode: ResetMode) async throws -> API.PasswordReset {
        try await app.call(.post, "/api/v1/devices/\(device.serial)/password-resets", token: installer.token,
                           body: API.RequestPasswordReset(mode: mode)).decode()
    }

    /// The installer asks, the owner's app seals the new password to the device key and approves.
    func approvedRequest(on app: TestPlatform, mode: ResetMode, existing: API.PasswordReset? = nil,
                         newPassword: String = "NuovaPass2025") async throws -> API.PasswordReset {
        let request = if let existing { existing } else { try await requestReset(on: app, mode: mode) }
        let detail: API.DeviceDetail = try await app.call(.get, "/api/v1/devices/\(device.serial)", token: owner.token).decode()
        let key = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: try #require(Base64URL.decode(detail.agreementKey)))
        let sealed = try PasswordSeal.seal(newPassword, to: key, requestId: request.id, serial: device.serial)
        let approved = try await app.call(.post, "/api/v1/password-resets/\(request.id)/approve", token: owner.token,
                                          body: API.ApprovePasswordReset(sealedPassword: sealed))
        #expect(approved.status == .ok, "\(approved.text)")
        return request
    }

    func grant(on app: TestPlatform, _ request: API.PasswordReset, courier: TestPlatform.Person, proof: ProximityProof? = nil)
        async throws -> TestPlatform.Answer
    {
        let proof = if let proof { proof } else { try await device.proof() }
        return try await app.call(.post, "/api/v1/password-resets/\(request.id)/grant", token: courier.token,
                                  body: API.GrantRequest(proximityProof: proof))
    }

    func stop() async { await device.stop() }
}
