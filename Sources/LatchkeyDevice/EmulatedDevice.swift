import Crypto
import Foundation
import LatchkeyProtocol
import Logging

/// One emulated camera, NVR or door station: the rules a device enforces on its own, whatever the platform says.
///
/// It answers challenges with signed nonces, applies a reset only with a grant signed by the platform key it learned
/// on its channel and naming a nonce it handed out (once), opens the sealed password with its own key, enforces the
/// password policy, ends every session and signs a receipt.
public actor EmulatedDevice {
    private var state: DeviceState
    private let directory: URL
    private let now: @Sendable () -> Date
    private let signingKey: Curve25519.Signing.PrivateKey
    private let agreementKey: Curve25519.KeyAgreement.PrivateKey
    /// Nonces handed out on the LAN and not yet spent; a restart or a new binding voids them all.
    private var outstandingNonces: [String: Date] = [:]
    private var sessions: Set<String> = []
    private var failedLogins = 0
    private var loginLockedUntil: Date?
    /// Receipts waiting to be reported on the channel.
    private var unreportedReceipts: [ResetReceipt] = []
    private var receiptListener: AsyncStream<ResetReceipt>.Continuation?

    public static let nonceLifetime: TimeInterval = 24 * 60 * 60
    public static let maximumOutstandingNonces = 32
    public static let maximumFailedLogins = 5
    public static let loginLockout: TimeInterval = 30 * 60
    public static let username = "admin"

    public init(configuration: DeviceConfiguration, now: @escaping @Sendable () -> Date = { Date() }) throws {
        let directory = URL(fileURLWithPath: configuration.stateDirectory)
        let state = try DeviceState.loadOrCreate(
            in: directory, serial: configuration.serial, model: configuration.model, deviceType: configuration.deviceType,
            firmware: configuration.firmware, verificationCode: configuration.verificationCode,
            adminPassword: configuration.adminPassword)
        self.state = state
        self.directory = directory
        self.now = now
        self.signingKey = try state.signingPrivateKey
        self.agreementKey = try state.agreementPrivateKey
    }

    public var serial: String { state.serial }
    public var verificationCode: String { state.verificationCode }
    public var isActivated: Bool { state.adminPassword != nil }
    /// Whether the channel's welcome has told it the platform key yet; until then it can verify no grant.
    public var knowsPlatformKey: Bool { state.platformKey != nil }
    public var signingPublicKey: Curve25519.Signing.PublicKey { signingKey.publicKey }
    public var agreementPublicKey: Curve25519.KeyAgreement.PublicKey { agreementKey.publicKey }

    public var info: LocalAPI.Info {
        LocalAPI.Info(
            serial: state.serial, model: state.model, deviceType: state.deviceType, firmware: state.firmware,
            activated: isActivated, passwordResetAbility: true,
            signingKey: Base64URL.encode(signingKey.publicKey.rawRepresentation),
            agreementKey: Base64URL.encode(agreementKey.publicKey.rawRepresentation))
    }

    // MARK: - Activation and login

    /// A new device has no admin password; the first one must meet the policy.
    public func activate(password: String) throws(DeviceError) {
        guard state.adminPassword == nil else { throw .alreadyActivated }
        do { try PasswordPolicy.device.check(password, username: Self.username) } catch { throw .weakPassword(error.description) }
        state.adminPassword = .init(password)
        try persist()
    }

    /// Five wrong passwords lock the login for 30 minutes.
    public func login(username: String, password: String) throws(DeviceError) -> String {
        let now = now()
        if let until = loginLockedUntil, now < until { throw .locked(until: until) }
        guard let stored = state.adminPassword else { throw .notActivated }
        guard username == Self.username, stored.matches(password) else {
            failedLogins += 1
            if failedLogins >= Self.maximumFailedLogins {
                failedLogins = 0
                loginLockedUntil = now + Self.loginLockout
                throw .locked(until: now + Self.loginLockout)
            }
            throw .unauthenticated("Wrong user name or password.")
        }
        failedLogins = 0
        loginLockedUntil = nil
        let session = Base64URL.random()
        sessions.insert(session)
        return session
    }

    public func isSessionValid(_ session: String) -> Bool { sessions.contains(session) }

    // MARK: - Proximity and reset

    /// A fresh nonce signed by the device key: proof, for whoever asked on the LAN, of standing next to the device.
    public func challenge() throws -> ProximityProof {
        let now = now()
        outstandingNonces = outstandingNonces.filter { now.timeIntervalSince($0.value) < Self.nonceLifetime }
        if outstandingNonces.count >= Self.maximumOutstandingNonces,
            let oldest = outstandingNonces.min(by: { $0.value < $1.value })?.key
        {
            outstandingNonces[oldest] = nil
        }
        let nonce = Base64URL.random()
        outstandingNonces[nonce] = now
        return try ProximityProof.sign(serial: state.serial, nonce: nonce, issuedAt: now, with: signingKey)
    }

    /// Applies a platform grant: checks everything, then sets the password and answers a signed receipt.
    public func applyReset(grant token: String, sealedPassword: String) async throws(DeviceError) -> ResetReceipt {
        guard let platformKeyText = state.platformKey, let raw = Base64URL.decode(platformKeyText),
            let platformKey = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { throw .unavailable("The device has not yet learned the platform's key: connect it to Latchkey first.") }
        let claims: ResetGrantClaims
        do {
            claims = try await ResetGrant.verify(token, platformKey: platformKey, serial: state.serial, now: now())
        } catch {
            throw .grantInvalid("The grant was refused: \(error.description).")
        }
        guard let requestId = claims.requestId, outstandingNonces[claims.nonce] != nil else {
            throw .grantInvalid("The grant names no challenge this device has outstanding.")
        }
        let password: String
        do {
            password = try PasswordSeal.open(sealedPassword, with: agreementKey, requestId: requestId)
        } catch {
            throw .grantInvalid("The sealed password does not open with this device's key.")
        }
        do { try PasswordPolicy.device.check(password, username: Self.username) } catch { throw .weakPassword(error.description) }
        // Spent only once everything passed: a refused attempt leaves the nonce for a corrected one.
        outstandingNonces[claims.nonce] = nil
        state.adminPassword = .init(password)
        sessions.removeAll()
        failedLogins = 0
        loginLockedUntil = nil
        try persist()
        let receipt: ResetReceipt
        do {
            receipt = try ResetReceipt.sign(requestId: requestId, serial: state.serial, nonce: claims.nonce, appliedAt: now(),
                                            with: signingKey)
        } catch {
            throw .unavailable("The receipt could not be signed.")
        }
        unreportedReceipts.append(receipt)
        receiptListener?.yield(receipt)
        return receipt
    }

    // MARK: - Channel

    /// The platform's key, as the channel's welcome tells it; kept so grants verify even while offline.
    public func learnPlatformKey(_ key: String) throws(DeviceError) {
        guard state.platformKey != key else { return }
        state.platformKey = key
        try persist()
    }

    /// A new binding (or unbinding) voids every nonce handed out before it.
    public func bindingChanged() {
        outstandingNonces.removeAll()
    }

    func hello(challenge nonce: String) throws -> DeviceHello {
        DeviceHello(
            serial: state.serial, model: state.model, deviceType: state.deviceType, firmware: state.firmware,
            signingKey: Base64URL.encode(signingKey.publicKey.rawRepresentation),
            agreementKey: Base64URL.encode(agreementKey.publicKey.rawRepresentation),
            verificationCodeSalt: state.verificationCodeSalt,
            verificationCodeHash: VerificationCode.hash(state.verificationCode, salt: state.verificationCodeSalt),
            challengeSignature: Base64URL.encode(try signingKey.signature(for: ChannelProof.signedBytes(nonce: nonce, serial: state.serial))))
    }

    func receiptReported(requestId: UUID) {
        unreportedReceipts.removeAll { $0.requestId == requestId }
    }

    /// The receipts still unreported, then each new one as the device applies it: what the channel reports.
    func receiptsToReport() -> AsyncStream<ResetReceipt> {
        let (stream, continuation) = AsyncStream.makeStream(of: ResetReceipt.self)
        receiptListener?.finish()
        receiptListener = continuation
        for receipt in unreportedReceipts { continuation.yield(receipt) }
        return stream
    }

    private func persist() throws(DeviceError) {
        do { try state.save(in: directory) } catch { throw .unavailable("The device could not save its state: \(error)") }
    }
}

/// How one emulated device is started: `latchkey device …`.
public struct DeviceConfiguration: Sendable {
    public var serial: String
    public var model: String
    public var deviceType: DeviceType
    public var firmware: String
    public var cloudURL: String
    public var listenHost: String
    public var listenPort: Int
    public var stateDirectory: String
    public var adminPassword: String?
    public var verificationCode: String?
    public var discoveryPort: Int
    /// Where the discovery responder listens: every interface by default, so broadcasts reach it.
    public var discoveryHost: String
    /// The address put in discovery answers; the listen address when that is a specific one.
    public var advertisedAddress: String?

    public init(
        serial: String, model: String, deviceType: DeviceType, firmware: String, cloudURL: String, listenHost: String,
        listenPort: Int, stateDirectory: String, adminPassword: String? = nil, verificationCode: String? = nil,
        discoveryPort: Int = SADP.port, discoveryHost: String = "0.0.0.0", advertisedAddress: String? = nil
    ) {
        self.serial = serial
        self.model = model
        self.deviceType = deviceType
        self.firmware = firmware
        self.cloudURL = cloudURL
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.stateDirectory = stateDirectory
        self.adminPassword = adminPassword
        self.verificationCode = verificationCode
        self.discoveryPort = discoveryPort
        self.discoveryHost = discoveryHost
        self.advertisedAddress = advertisedAddress
    }
}
