import Crypto
import Foundation
import LatchkeyProtocol

/// What a device keeps across restarts, in its state folder, beside the identity it was given at manufacture: its
/// firmware, its admin password (salted hash), the platform key it pinned, how many wrong label codes it has seen, and
/// the receipts the platform has not acknowledged yet.
struct DeviceState: Codable, Sendable {
    var serial: String
    var deviceType: DeviceType
    var firmware: String
    var adminPassword: StoredPassword?
    /// The pinned platform key (base64url): provisioned with the identity, else taken from the first welcome.
    var platformKey: String?
    var labelCodeGuard = CodeGuard()
    /// Receipts of resets applied but not yet acknowledged by the platform: saved with the new password, in the same
    /// write, so a device that loses power right after a reset still tells the platform it happened.
    var unreportedReceipts: [ResetReceipt] = []

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

    init(serial: String, deviceType: DeviceType, firmware: String, adminPassword: StoredPassword?, platformKey: String?) {
        self.serial = serial
        self.deviceType = deviceType
        self.firmware = firmware
        self.adminPassword = adminPassword
        self.platformKey = platformKey
    }

    /// A state folder written before the label-code guard existed still loads.
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        serial = try container.decode(String.self, forKey: .serial)
        deviceType = try container.decode(DeviceType.self, forKey: .deviceType)
        firmware = try container.decode(String.self, forKey: .firmware)
        adminPassword = try container.decodeIfPresent(StoredPassword.self, forKey: .adminPassword)
        platformKey = try container.decodeIfPresent(String.self, forKey: .platformKey)
        labelCodeGuard = try container.decodeIfPresent(CodeGuard.self, forKey: .labelCodeGuard) ?? CodeGuard()
        unreportedReceipts = try container.decodeIfPresent([ResetReceipt].self, forKey: .unreportedReceipts) ?? []
    }

    /// Reads the state folder, or starts one for this identity on first start.
    static func loadOrCreate(in directory: URL, identity: DeviceIdentityFile, deviceType: DeviceType, firmware: String,
                             adminPassword: String?) throws -> DeviceState {
        let file = directory.appendingPathComponent("device.json")
        if let data = try? Data(contentsOf: file) {
            var state = try WireCoding.makeDecoder().decode(DeviceState.self, from: data)
            guard state.serial == identity.serial else {
                throw DeviceError.invalidRequest("The state folder belongs to device \(state.serial), not \(identity.serial).")
            }
            // A firmware upgrade is the same device with the same keys.
            state.firmware = firmware
            state.deviceType = deviceType
            if state.platformKey == nil { state.platformKey = identity.platformKey }
            try state.save(in: directory)
            return state
        }
        if let adminPassword {
            do { try PasswordPolicy.device.check(adminPassword) } catch { throw DeviceError.weakPassword(error.description) }
        }
        let state = DeviceState(
            serial: identity.serial, deviceType: deviceType, firmware: firmware, adminPassword: adminPassword.map(StoredPassword.init),
            platformKey: identity.platformKey)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try state.save(in: directory)
        return state
    }

    func save(in directory: URL) throws {
        try PrivateFile.write(try WireCoding.makeEncoder().encode(self), to: directory.appendingPathComponent("device.json"))
    }
}

/// The device's guard on a code typed elsewhere: after `freeTries` wrong codes, each further check waits twice as
/// long as the last, up to a minute — so a stranger's guesses cost the real owner at most a minute.
struct CodeGuard: Codable, Sendable, Equatable {
    static let freeTries = 5
    static let longestWait: TimeInterval = 60
    var failures = 0
    var nextCheckAt: Date?

    /// Seconds until the next check is allowed, or nil when it may run now.
    func wait(at now: Date) -> Int? {
        guard let nextCheckAt, now < nextCheckAt else { return nil }
        return max(1, Int(nextCheckAt.timeIntervalSince(now).rounded(.up)))
    }

    mutating func record(matches: Bool, at now: Date) {
        guard !matches else { self = CodeGuard(); return }
        failures += 1
        guard failures >= Self.freeTries else { return }
        let wait = min(Self.longestWait, pow(2, Double(failures - Self.freeTries)))
        nextCheckAt = now + wait
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
    /// The platform on the other end of the channel is not the one this device pinned.
    case platformRefused(String)
    /// Too many requests: try again after this many seconds.
    case busy(retryAfter: Int)
    /// A request a page in a browser could have made, or one for another host: refused.
    case foreignRequest(String)
    case unsupportedMediaType
    /// The device holds no notice of an approved request, so it gives no presence code.
    case noApprovedRequest
    case presenceCodeInvalid(String)

    public var code: APIErrorCode {
        switch self {
        case .invalidRequest, .notActivated, .alreadyActivated: .invalidRequest
        case .unauthenticated: .unauthenticated
        case .locked: .locked
        case .weakPassword: .weakPassword
        case .grantInvalid: .grantInvalid
        case .unavailable: .deviceOffline
        case .platformRefused: .grantInvalid
        case .busy: .rateLimited
        case .foreignRequest: .forbidden
        case .unsupportedMediaType: .invalidRequest
        case .noApprovedRequest: .requestNotPending
        case .presenceCodeInvalid: .presenceCodeInvalid
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let message), .unauthenticated(let message), .weakPassword(let message),
            .grantInvalid(let message), .unavailable(let message), .platformRefused(let message), .foreignRequest(let message):
            message
        case .busy(let retryAfter): "Too many challenges: try again in \(retryAfter) s."
        case .unsupportedMediaType: "The device takes JSON only: send Content-Type: application/json."
        case .noApprovedRequest:
            "No password reset of this device has been approved: a presence code appears only after the owner approves one."
        case .presenceCodeInvalid(let message): message
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
        case .platformRefused, .foreignRequest: 403
        case .busy: 429
        case .unsupportedMediaType: 415
        case .noApprovedRequest: 409
        case .presenceCodeInvalid: 403
        }
    }
}
