import Crypto
import Foundation
import LatchkeyProtocol

/// What a device keeps across restarts, in its state folder: who it is, its keys, the code on its label, its admin
/// password (salted hash) and the platform key it learned on its channel.
struct DeviceState: Codable, Sendable {
    var serial: String
    var model: String
    var deviceType: DeviceType
    var firmware: String
    var signingKey: Data
    var agreementKey: Data
    var verificationCode: String
    var verificationCodeSalt: String
    var adminPassword: StoredPassword?
    var platformKey: String?

    /// A salted SHA-256 of the admin password: enough for an emulator; a real device keeps a slow hash.
    struct StoredPassword: Codable, Sendable, Equatable {
        var salt: String
        var hash: String

        init(_ password: String) {
            salt = Base64URL.random(bytes: 16)
            hash = Self.digest(password, salt: salt)
        }

        func matches(_ password: String) -> Bool {
            Self.digest(password, salt: salt) == hash
        }

        private static func digest(_ password: String, salt: String) -> String {
            Base64URL.encode(Data(SHA256.hash(data: Data("\(salt)\n\(password)".utf8))))
        }
    }

    var signingPrivateKey: Curve25519.Signing.PrivateKey {
        get throws { try .init(rawRepresentation: signingKey) }
    }

    var agreementPrivateKey: Curve25519.KeyAgreement.PrivateKey {
        get throws { try .init(rawRepresentation: agreementKey) }
    }

    /// Reads the state folder, or creates the device's keys and label code on first start.
    static func loadOrCreate(in directory: URL, serial: String, model: String, deviceType: DeviceType, firmware: String,
                             verificationCode: String?, adminPassword: String?) throws -> DeviceState {
        let file = directory.appendingPathComponent("device.json")
        if let data = try? Data(contentsOf: file) {
            var state = try WireCoding.makeDecoder().decode(DeviceState.self, from: data)
            guard state.serial == serial else {
                throw DeviceError.invalidRequest("The state folder belongs to device \(state.serial), not \(serial).")
            }
            // A firmware upgrade or a relabelled model is the same device with the same keys.
            state.model = model
            state.firmware = firmware
            state.deviceType = deviceType
            try state.save(in: directory)
            return state
        }
        if let verificationCode, !VerificationCode.isWellFormed(verificationCode) {
            throw DeviceError.invalidRequest("A verification code is six capital letters (no I or O).")
        }
        if let adminPassword {
            do { try PasswordPolicy.device.check(adminPassword) } catch { throw DeviceError.weakPassword(error.description) }
        }
        let state = DeviceState(
            serial: serial, model: model, deviceType: deviceType, firmware: firmware,
            signingKey: Curve25519.Signing.PrivateKey().rawRepresentation,
            agreementKey: Curve25519.KeyAgreement.PrivateKey().rawRepresentation,
            verificationCode: verificationCode ?? VerificationCode.random(), verificationCodeSalt: Base64URL.random(bytes: 16),
            adminPassword: adminPassword.map(StoredPassword.init), platformKey: nil)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try state.save(in: directory)
        return state
    }

    func save(in directory: URL) throws {
        let file = directory.appendingPathComponent("device.json")
        try WireCoding.makeEncoder().encode(self).write(to: file, options: .atomic)
        // The private keys live here: readable by the device's own user only.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }
}

/// What the device's local API refuses, with the platform's stable codes.
public enum DeviceError: Error, Equatable, Sendable {
    case invalidRequest(String)
    case unauthenticated(String)
    case locked(until: Date)
    case notActivated
    case alreadyActivated
    case weakPassword(String)
    case grantInvalid(String)
    case unavailable(String)

    public var code: APIErrorCode {
        switch self {
        case .invalidRequest, .notActivated, .alreadyActivated: .invalidRequest
        case .unauthenticated: .unauthenticated
        case .locked: .locked
        case .weakPassword: .weakPassword
        case .grantInvalid: .grantInvalid
        case .unavailable: .deviceOffline
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let message), .unauthenticated(let message), .weakPassword(let message),
            .grantInvalid(let message), .unavailable(let message):
            message
        case .locked(let until): "Too many wrong passwords: login is locked until \(until.formatted(.iso8601))."
        case .notActivated: "The device is not activated: set an admin password first (POST /local/v1/activate)."
        case .alreadyActivated: "The device is already activated."
        }
    }

    public var status: Int {
        switch self {
        case .invalidRequest, .notActivated, .alreadyActivated: 400
        case .unauthenticated: 401
        case .grantInvalid: 403
        case .locked: 423
        case .weakPassword: 422
        case .unavailable: 503
        }
    }
}
