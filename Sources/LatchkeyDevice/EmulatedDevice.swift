import Crypto
import Foundation
import LatchkeyProtocol
import Logging

/// One emulated camera, NVR or door station: the rules a device enforces on its own, whatever the platform says.
///
/// It proves the identity its manufacturer certified, pins the platform's key, compares the codes people type
/// elsewhere, answers challenges with signed nonces, applies a reset only with a grant signed by the pinned platform
/// key and naming a nonce it handed out (once), opens the sealed password with its own key, enforces the password
/// policy, ends every session and signs a receipt.
public actor EmulatedDevice {
    private var state: DeviceState
    private let identity: DeviceIdentityFile
    private let directory: URL
    private let now: @Sendable () -> Date
    private let signingKey: Curve25519.Signing.PrivateKey
    private let agreementKey: Curve25519.KeyAgreement.PrivateKey
    /// Nonces handed out on the LAN and not yet spent, by who asked; a restart or a new binding voids them all.
    private var outstandingNonces: [String: (source: String, issuedAt: Date)] = [:]
    private var sessions: Set<String> = []
    /// Wrong logins and lockouts per source address: whoever guesses locks themselves out, not the owner elsewhere.
    private var failedLogins: [String: Int] = [:]
    private var loginLockedUntil: [String: Date] = [:]
    /// The platform's notice of the approved request, and the presence code showing for it, if any.
    private var approval: ApprovalNotice?
    private var presence: PresenceState?
    private var spentPresenceNonces: Set<String> = []
    /// Receipts waiting to be reported on the channel.
    private var receiptListener: AsyncStream<ResetReceipt>.Continuation?

    /// A proof is fresh for 60 s and its grant lives 120 s more: a nonce older than that can serve nobody.
    public static let nonceLifetime: TimeInterval = 180
    /// Per source address: a flood from one address evicts only its own nonces, never the courier's.
    public static let maximumNoncesPerSource = 4
    public static let maximumOutstandingNonces = 1024
    /// Challenges one address may ask for in a minute: a courier needs one or two; a flood costs only its sender.
    public static let challengesPerSourcePerMinute = 20
    private var recentChallenges: [String: [Date]] = [:]
    public static let maximumFailedLogins = 5
    public static let loginLockout: TimeInterval = 30 * 60
    public static let username = "admin"
    public static let presenceCodeLifetime: TimeInterval = 120
    public static let presenceCodeTries = 3

    struct PresenceState {
        var code: String
        var requestId: UUID
        var expiresAt: Date
        var triesLeft: Int
    }

    public init(configuration: DeviceConfiguration, now: @escaping @Sendable () -> Date = { Date() }) throws {
        let directory = URL(fileURLWithPath: configuration.stateDirectory)
        let identity = configuration.identity
        self.state = try DeviceState.loadOrCreate(
            in: directory, identity: identity, deviceType: configuration.deviceType, firmware: configuration.firmware,
            adminPassword: configuration.adminPassword)
        self.identity = identity
        self.directory = directory
        self.now = now
        self.signingKey = try identity.signingPrivateKey
        self.agreementKey = try identity.agreementPrivateKey
    }

    public var serial: String { state.serial }
    public var model: String { identity.model }
    /// The six letters on the label.
    public var verificationCode: String { identity.labelCode }
    public var isActivated: Bool { state.adminPassword != nil }
    /// Whether it has pinned a platform key yet; until then it can verify no grant.
    public var knowsPlatformKey: Bool { state.platformKey != nil }
    public var pinnedPlatformKey: String? { state.platformKey }
    public var signingPublicKey: Curve25519.Signing.PublicKey { signingKey.publicKey }
    public var agreementPublicKey: Curve25519.KeyAgreement.PublicKey { agreementKey.publicKey }

    public var info: LocalAPI.Info {
        LocalAPI.Info(
            serial: state.serial, model: identity.model, deviceType: state.deviceType, firmware: state.firmware,
            activated: isActivated, passwordResetAbility: true,
            signingKey: Base64URL.encode(signingKey.publicKey.rawRepresentation),
            agreementKey: Base64URL.encode(agreementKey.publicKey.rawRepresentation), certificateChain: identity.chain)
    }

    // MARK: - Activation and login

    /// A new device has no admin password; the first one must meet the policy.
    public func activate(password: String) throws(DeviceError) {
        guard state.adminPassword == nil else { throw .alreadyActivated }
        do { try PasswordPolicy.device.check(password, username: Self.username) } catch { throw .weakPassword(error.description) }
        state.adminPassword = .init(password)
        try persist()
    }

    /// Five wrong passwords from one source lock the login for that source for 30 minutes.
    public func login(username: String, password: String, from source: String = "local") throws(DeviceError) -> String {
        let now = now()
        if let until = loginLockedUntil[source], now < until { throw .locked(until: until) }
        guard let stored = state.adminPassword else { throw .notActivated }
        guard username == Self.username, stored.matches(password) else {
            failedLogins[source, default: 0] += 1
            if failedLogins[source, default: 0] >= Self.maximumFailedLogins {
                failedLogins[source] = nil
                loginLockedUntil[source] = now + Self.loginLockout
                throw .locked(until: now + Self.loginLockout)
            }
            throw .unauthenticated("Wrong user name or password.")
        }
        failedLogins[source] = nil
        loginLockedUntil[source] = nil
        let session = Base64URL.random()
        sessions.insert(session)
        return session
    }

    public func isSessionValid(_ session: String) -> Bool { sessions.contains(session) }

    // MARK: - Proximity and reset

    /// A fresh nonce signed by the device key: proof, for whoever asked on the LAN, of standing next to the device.
    public func challenge(from source: String = "local") throws(DeviceError) -> ProximityProof {
        let now = now()
        let recent = recentChallenges[source, default: []].filter { now.timeIntervalSince($0) < 60 }
        if recent.count >= Self.challengesPerSourcePerMinute, let oldest = recent.first {
            recentChallenges[source] = recent
            throw .busy(retryAfter: max(1, Int((60 - now.timeIntervalSince(oldest)).rounded(.up))))
        }
        recentChallenges[source] = recent + [now]
        // Addresses that stopped asking are forgotten, so the table does not grow with every address ever seen.
        if recentChallenges.count > 4096 { recentChallenges = recentChallenges.filter { $0.value.contains { now.timeIntervalSince($0) < 60 } } }
        outstandingNonces = outstandingNonces.filter { now.timeIntervalSince($0.value.issuedAt) < Self.nonceLifetime }
        let own = outstandingNonces.filter { $0.value.source == source }
        if own.count >= Self.maximumNoncesPerSource, let oldest = own.min(by: { $0.value.issuedAt < $1.value.issuedAt })?.key {
            outstandingNonces[oldest] = nil
        } else if outstandingNonces.count >= Self.maximumOutstandingNonces {
            throw .busy(retryAfter: Int(Self.nonceLifetime))
        }
        let nonce = Base64URL.random()
        outstandingNonces[nonce] = (source, now)
        do {
            return try ProximityProof.sign(serial: state.serial, nonce: nonce, issuedAt: now, with: signingKey)
        } catch {
            throw .unavailable("The proof could not be signed.")
        }
    }

    /// Applies a platform grant: checks everything, then sets the password and answers a signed receipt.
    public func applyReset(grant token: String, sealedPassword: String) async throws(DeviceError) -> ResetReceipt {
        let claims = try await verifiedGrant(token)
        guard let issued = outstandingNonces[claims.nonce]?.issuedAt, now().timeIntervalSince(issued) < Self.nonceLifetime else {
            throw .grantInvalid("The grant names no challenge this device has outstanding.")
        }
        let receipt = try apply(claims, sealedPassword: sealedPassword)
        // Spent only once everything passed: a refused attempt leaves the nonce for a corrected one.
        outstandingNonces[claims.nonce] = nil
        return receipt
    }

    /// A grant signed by the pinned platform key, for this device, not expired.
    private func verifiedGrant(_ token: String) async throws(DeviceError) -> ResetGrantClaims {
        guard let platformKey = pinnedKey else {
            throw .unavailable("The device has no platform key pinned yet: connect it to Latchkey first.")
        }
        let claims: ResetGrantClaims
        do {
            claims = try await ResetGrant.verify(token, platformKey: platformKey, serial: state.serial, now: now())
        } catch {
            throw .grantInvalid("The grant was refused: \(error.description).")
        }
        guard claims.requestId != nil else { throw .grantInvalid("The grant names no request.") }
        return claims
    }

    private var pinnedKey: Curve25519.Signing.PublicKey? {
        state.platformKey.flatMap(Base64URL.decode).flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }

    /// Opens the seal, checks the policy, sets the password, ends every session and signs the receipt.
    private func apply(_ claims: ResetGrantClaims, sealedPassword: String) throws(DeviceError) -> ResetReceipt {
        guard let requestId = claims.requestId else { throw .grantInvalid("The grant names no request.") }
        let password: String
        do {
            password = try PasswordSeal.open(sealedPassword, with: agreementKey, requestId: requestId, serial: state.serial)
        } catch .retiredSuite {
            throw .grantInvalid("The new password was sealed with an older method this device no longer accepts: the owner must approve the request again.")
        } catch {
            throw .grantInvalid("The sealed password does not open with this device's key.")
        }
        do { try PasswordPolicy.device.check(password, username: Self.username) } catch { throw .weakPassword(error.description) }
        let receipt: ResetReceipt
        do {
            receipt = try ResetReceipt.sign(requestId: requestId, serial: state.serial, nonce: claims.nonce, appliedAt: now(),
                                            with: signingKey)
        } catch {
            throw .unavailable("The receipt could not be signed.")
        }
        // The password and its receipt are written together: after a crash there is either neither or both.
        var changed = state
        changed.adminPassword = .init(password)
        changed.unreportedReceipts.append(receipt)
        try persist(changed)
        sessions.removeAll()
        failedLogins.removeAll()
        loginLockedUntil.removeAll()
        approval = nil
        presence = nil
        receiptListener?.yield(receipt)
        return receipt
    }

    // MARK: - Presence code (the browser path)

    /// Keeps the platform's notice of an approved request: only then does the device's page give a presence code.
    public func accept(_ notice: ApprovalNotice) throws(DeviceError) {
        guard let key = pinnedKey, notice.isSigned(by: key), notice.serial == state.serial else {
            throw .platformRefused("The approval notice is not signed by the pinned platform key for this device.")
        }
        if approval?.requestId != notice.requestId { presence = nil }
        approval = notice
    }

    /// A fresh single-use code for the approved request, valid two minutes; asking again replaces it.
    public func presenceCode() throws(DeviceError) -> LocalAPI.PresenceCode {
        let now = now()
        guard let approval, approval.deadline > now else { throw .noApprovedRequest }
        let code = String(format: "%06d", Int.random(in: 0..<1_000_000))
        let expiresAt = min(now + Self.presenceCodeLifetime, approval.deadline)
        presence = PresenceState(code: code, requestId: approval.requestId, expiresAt: expiresAt, triesLeft: Self.presenceCodeTries)
        return LocalAPI.PresenceCode(code: code, requestId: approval.requestId, requestedBy: approval.requestedBy, mode: approval.mode,
                                     expiresAt: expiresAt)
    }

    /// The browser path's delivery: the typed code must be the one this device shows, then the grant applies as on
    /// the LAN path. Three wrong codes end the code.
    public func deliver(_ delivery: PresenceDelivery) async -> PresenceDeliveryAnswer {
        func refusal(_ error: DeviceError) -> PresenceDeliveryAnswer {
            PresenceDeliveryAnswer(deliveryId: delivery.deliveryId, receipt: nil, refusal: .init(code: error.code, message: error.message))
        }
        do {
            let claims = try await verifiedGrant(delivery.grant)
            guard claims.requestId == delivery.requestId, claims.nonce.hasPrefix(PresenceGrant.noncePrefix),
                !spentPresenceNonces.contains(claims.nonce)
            else { throw DeviceError.grantInvalid("The grant is not for a presence-code delivery of this request.") }
            try checkPresenceCode(delivery.presenceCode, for: delivery.requestId)
            let receipt = try apply(claims, sealedPassword: delivery.sealedPassword)
            spentPresenceNonces.insert(claims.nonce)
            return PresenceDeliveryAnswer(deliveryId: delivery.deliveryId, receipt: receipt, refusal: nil)
        } catch let error as DeviceError {
            return refusal(error)
        } catch {
            return refusal(.unavailable("The delivery failed: \(error)"))
        }
    }

    private func checkPresenceCode(_ typed: String, for requestId: UUID) throws(DeviceError) {
        guard var current = presence, current.requestId == requestId, current.expiresAt > now() else {
            presence = nil
            throw .presenceCodeInvalid("No presence code is showing for this request: read a new one on the device's page.")
        }
        guard typed.trimmingCharacters(in: .whitespaces) == current.code else {
            current.triesLeft -= 1
            presence = current.triesLeft > 0 ? current : nil
            throw .presenceCodeInvalid(current.triesLeft > 0
                ? "Wrong presence code: \(current.triesLeft) tries left."
                : "Wrong presence code three times: this code is spent; read a new one on the device's page.")
        }
        // Single use: right or wrong from here on, the code is gone.
        presence = nil
    }

    // MARK: - Channel

    /// Takes the platform's welcome only under the pinned key, or a new key the pinned one introduced; with no key
    /// pinned (none was provisioned), the first welcome's key is pinned. Throws, and the channel closes, otherwise.
    public func accept(_ welcome: PlatformWelcome, deviceNonce: String) throws(DeviceError) {
        guard welcome.isSigned(deviceNonce: deviceNonce, serial: state.serial) else {
            throw .platformRefused("The welcome is not signed by the key it names: this is not the Latchkey platform.")
        }
        guard let pinned = state.platformKey else {
            state.platformKey = welcome.platformKey
            return try persist()
        }
        if welcome.platformKey == pinned { return }
        guard let rotation = welcome.rotation, rotation.isValid, rotation.previousKey == pinned,
            rotation.newKey == welcome.platformKey
        else {
            throw .platformRefused("The platform presented a key this device has not pinned, with no rotation signed by the pinned key.")
        }
        state.platformKey = welcome.platformKey
        try persist()
    }

    /// Compares a code typed elsewhere with the one on its label, and signs the answer; after five wrong codes, each
    /// further check waits twice as long as the last, up to a minute.
    public func check(_ check: CodeCheck) throws(DeviceError) -> CodeCheckAnswer {
        let now = now()
        let answer: (matches: Bool, retryAfter: Int?)
        if let wait = state.labelCodeGuard.wait(at: now) {
            answer = (false, wait)
        } else {
            let matches = check.code.uppercased() == identity.labelCode
            state.labelCodeGuard.record(matches: matches, at: now)
            try persist()
            answer = (matches, nil)
        }
        do {
            return try CodeCheckAnswer.sign(check, serial: state.serial, matches: answer.matches, retryAfter: answer.retryAfter,
                                            with: signingKey)
        } catch {
            throw .unavailable("The answer could not be signed.")
        }
    }

    /// A new binding (or unbinding) voids every nonce handed out before it.
    public func bindingChanged() {
        outstandingNonces.removeAll()
        approval = nil
        presence = nil
    }

    func hello(challenge nonce: String, deviceNonce: String, lanAddresses: [String]) throws -> DeviceHello {
        DeviceHello(
            serial: state.serial, deviceType: state.deviceType, firmware: state.firmware, certificateChain: identity.chain,
            challengeSignature: Base64URL.encode(try signingKey.signature(for: ChannelProof.signedBytes(nonce: nonce, serial: state.serial))),
            deviceNonce: deviceNonce, lanAddresses: lanAddresses)
    }

    /// Forgotten in memory only, and written with the next change the device saves: a restart before then reports
    /// the receipt again, which the platform takes as once. A reset then costs one write of the device's state, not
    /// two (the write, with its `fsync`, was 16 % of the flow benchmark's load CPU, half of it here).
    func receiptReported(requestId: UUID) {
        state.unreportedReceipts.removeAll { $0.requestId == requestId }
    }

    /// The receipts still unreported, then each new one as the device applies it: what the channel reports.
    func receiptsToReport() -> AsyncStream<ResetReceipt> {
        let (stream, continuation) = AsyncStream.makeStream(of: ResetReceipt.self)
        receiptListener?.finish()
        receiptListener = continuation
        for receipt in state.unreportedReceipts { continuation.yield(receipt) }
        return stream
    }

    private func persist() throws(DeviceError) {
        try persist(state)
    }

    /// Saves `changed` and only then makes it the device's state: what the device acts on is what a restart finds (but
    /// for receipts the platform took since, which `receiptReported` forgets in memory only).
    private func persist(_ changed: DeviceState) throws(DeviceError) {
        do { try changed.save(in: directory) } catch { throw .unavailable("The device could not save its state: \(error)") }
        state = changed
    }
}

/// How one emulated device is started: `latchkey device --identity FILE …`.
public struct DeviceConfiguration: Sendable {
    /// Keys, certificate chain and label code, as issued by the manufacturer.
    public var identity: DeviceIdentityFile
    public var deviceType: DeviceType
    public var firmware: String
    public var cloudURL: String
    public var listenHost: String
    public var listenPort: Int
    public var stateDirectory: String
    public var adminPassword: String?
    public var discoveryPort: Int
    /// Where the discovery responder listens: every interface by default, so broadcasts reach it.
    public var discoveryHost: String
    /// The address put in discovery answers; the listen address when that is a specific one.
    public var advertisedAddress: String?
    /// PEM of the CA that signed the platform's TLS certificate, for `https` clouds on a private CA.
    public var caFile: String?

    public init(
        identity: DeviceIdentityFile, deviceType: DeviceType, firmware: String, cloudURL: String, listenHost: String,
        listenPort: Int, stateDirectory: String, adminPassword: String? = nil,
        discoveryPort: Int = SADP.port, discoveryHost: String = "0.0.0.0", advertisedAddress: String? = nil, caFile: String? = nil
    ) {
        self.caFile = caFile
        self.identity = identity
        self.deviceType = deviceType
        self.firmware = firmware
        self.cloudURL = cloudURL
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.stateDirectory = stateDirectory
        self.adminPassword = adminPassword
        self.discoveryPort = discoveryPort
        self.discoveryHost = discoveryHost
        self.advertisedAddress = advertisedAddress
    }

    public var serial: String { identity.serial }
}
