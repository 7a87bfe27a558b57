import Crypto
import Foundation
import LatchkeyProtocol

/// How long a proximity proof and a grant stay good: long enough to walk a request through, short enough that a
/// proof or grant overheard on the LAN is soon worthless.
public enum GrantRules {
    public static let proofFreshness: TimeInterval = 60
    /// Device clocks drift; a proof from slightly in the future is still accepted.
    public static let clockSkew: TimeInterval = 30
    public static let grantLifetime: TimeInterval = 120
}

/// What the platform hands the courier for the device.
public struct IssuedGrant: Sendable, Equatable {
    public var token: String
    public var sealedPassword: String
    public var expiresAt: Date
}

extension PasswordResetService {
    /// The courier presents the device's proximity proof and receives the signed grant with the sealed password.
    public func grant(id: UUID, proof: ProximityProof, by account: Account) async throws -> IssuedGrant {
        try await limiter.attempt(.grantPerAccount, key: account.id.uuidString)
        let (claims, sealed) = try await issueGrant(id: id, nonce: proof.nonce, by: account) { request, parties, session, now in
            try Self.checkProof(proof, for: parties.device, at: now)
            if try await session.resetRequests.nonceSpent(proof.nonce) {
                throw LatchkeyError.proximityInvalid("This proximity proof was used before: ask the device for a fresh challenge.")
            }
            return nil
        }
        let token = try await ResetGrant.sign(claims, with: signingKey)
        return IssuedGrant(token: token, sealedPassword: sealed, expiresAt: claims.exp.value)
    }

    /// What both paths to the device share: the request visible and not due, approved, this account its courier and
    /// still allowed, a sealed password held; then the path's own `check`, which may add to the history's line. The
    /// nonce is recorded and the audit line written in the same transaction; a refusal leaves its audit line and only
    /// then reaches the caller. Answers the claims to sign and the sealed password.
    func issueGrant(
        id: UUID, nonce: String, by account: Account, refusedDetail: String? = nil,
        check: @escaping @Sendable (PasswordResetRequest, ResetParties, any StoreSession, Date) async throws -> String?
    ) async throws -> (ResetGrantClaims, String) {
        let now = clock.now()
        let outcome = try await store.transaction { session in
            try await self.whileOpen(id, visibleTo: account, at: now, in: session) { request -> Outcome<(ResetGrantClaims, String)> in
                let parties = try await ResetParties.load(request, in: session)
                let sealed: String
                let detail: String?
                do {
                    try request.checkGrant(to: account.id, at: now)
                    try await Self.checkCourierStillAllowed(account, parties: parties, at: now, in: session)
                    detail = try await check(request, parties, session, now)
                    guard let stored = request.sealedPassword else { throw LatchkeyError.grantInvalid("The request holds no sealed password.") }
                    sealed = stored
                } catch let error as LatchkeyError {
                    try await self.audit(parties, action: .resetGranted, actor: account.id, at: now, in: session,
                                         outcome: "refused: \(error.code.rawValue)", detail: refusedDetail)
                    return Outcome(failure: error)
                }
                // The database's key on the nonce settles a race between two couriers with the same proof.
                try await session.resetRequests.recordGrant(requestId: request.id, serial: request.deviceSerial, nonce: nonce, at: now)
                try await self.audit(parties, action: .resetGranted, actor: account.id, at: now, in: session, outcome: "granted",
                                     detail: detail)
                let expiresAt = min(now + GrantRules.grantLifetime, request.expiresAt)
                return Outcome(value: (ResetGrantClaims(requestId: request.id, serial: request.deviceSerial, nonce: nonce, issuedAt: now,
                                                        expiresAt: expiresAt), sealed))
            }
        }
        return try await finish(outcome)
    }

    /// Where a receipt came from: the courier's app, or the device's own channel.
    public enum ReceiptSource: Sendable {
        case courier(Account)
        case deviceChannel(serial: String)
    }

    /// The first valid device-signed receipt completes the request and tells both sides: *password reset successfully*.
    public func complete(with receipt: ResetReceipt, from source: ReceiptSource) async throws -> ResetRequestView {
        let now = clock.now()
        let outcome = try await store.transaction { session -> Outcome<ResetRequestView> in
            guard var request = try await session.resetRequests.find(id: receipt.requestId) else {
                throw LatchkeyError.notFound("No password reset request with id \(receipt.requestId).")
            }
            var actor: UUID?
            switch source {
            case .courier(let account):
                guard request.involves(account.id) else {
                    throw LatchkeyError.notFound("No password reset request with id \(receipt.requestId) is visible to you.")
                }
                actor = account.id
            case .deviceChannel(let serial):
                guard serial == request.deviceSerial else { throw LatchkeyError.receiptInvalid("The receipt is for another device.") }
            }
            var parties = try await ResetParties.load(request, in: session)
            guard receipt.serial == request.deviceSerial, let key = parties.device.identity?.signingPublicKey,
                receipt.isSigned(by: key)
            else { throw LatchkeyError.receiptInvalid("The receipt is not signed by device \(request.deviceSerial).") }
            guard try await session.resetRequests.grantIssued(requestId: request.id, nonce: receipt.nonce) else {
                throw LatchkeyError.receiptInvalid("The receipt names no grant of this request.")
            }
            if request.storedStatus == .completed {
                return Outcome(value: self.view(request, parties: parties, at: now))
            }
            try request.complete(at: now)
            try await session.resetRequests.update(request)
            parties.request = request
            let via = if case .deviceChannel = source { "via device channel" } else { "via courier" }
            try await self.audit(parties, action: .resetCompleted, actor: actor, at: now, in: session, detail: via)
            let notifications = try await self.notify(ResetNotices.completed(parties, at: now), about: parties, in: session)
            return Outcome(value: self.view(request, parties: parties, at: now), notifications: notifications)
        }
        return try await finish(outcome)
    }

    /// The approval was given for this site and this installer: an installer whose authorization expired, was revoked
    /// or lost `password_reset` since cannot finish, nor can anyone once the device left the site.
    static func checkCourierStillAllowed(_ courier: Account, parties: ResetParties, at now: Date, in session: any StoreSession)
        async throws
    {
        guard parties.device.siteId == parties.request.siteId else {
            throw LatchkeyError.grantInvalid("Device \(parties.device.serial) is no longer on site '\(parties.site.name)'.")
        }
        guard courier.role == .installer else { return }
        guard let authorization = try await session.sites.authorization(siteId: parties.site.id, installerId: courier.id),
            authorization.isActive(at: now)
        else { throw LatchkeyError.siteNotAuthorized(site: parties.site.name, missing: nil) }
        guard authorization.allows(.passwordReset, at: now) else {
            throw LatchkeyError.siteNotAuthorized(site: parties.site.name, missing: .passwordReset)
        }
    }

    /// A proof counts when it names the request's device, carries that device's pinned signature, and is fresh.
    static func checkProof(_ proof: ProximityProof, for device: Device, at now: Date) throws(LatchkeyError) {
        guard proof.serial == device.serial else {
            throw .proximityInvalid("The proximity proof comes from device \(proof.serial), not from \(device.serial).")
        }
        guard device.keysPinned, let key = device.identity?.signingPublicKey else {
            throw .proximityInvalid("Device \(device.serial) has no pinned key: bind it to its site first.")
        }
        guard proof.isSigned(by: key) else {
            throw .proximityInvalid("The proximity proof is not signed by device \(device.serial).")
        }
        guard proof.issuedAt >= now - GrantRules.proofFreshness, proof.issuedAt <= now + GrantRules.clockSkew else {
            throw .proximityInvalid("The proximity proof is stale: ask the device for a fresh challenge on its LAN.")
        }
    }
}
