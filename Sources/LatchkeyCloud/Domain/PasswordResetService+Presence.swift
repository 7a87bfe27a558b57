import Foundation
import LatchkeyProtocol

extension PasswordResetService {
    /// The platform's signed notice of an approved request, for the device it concerns.
    func approvalNotice(_ view: ResetRequestView) throws -> ApprovalNotice {
        try ApprovalNotice.sign(requestId: view.request.id, serial: view.request.deviceSerial, requestedBy: view.installerName,
                                mode: view.request.mode, deadline: view.request.expiresAt, with: signingKey)
    }

    /// The notices of the device's approved, open requests: sent again whenever it connects.
    public func approvalNotices(serial: String) async throws -> [ApprovalNotice] {
        let now = clock.now()
        let views = try await store.read { session -> [ResetRequestView] in
            var views: [ResetRequestView] = []
            for request in try await session.resetRequests.open(deviceSerial: serial) where request.status(at: now) == .approved {
                views.append(self.view(request, parties: try await ResetParties.load(request, in: session), at: now))
            }
            return views
        }
        return try views.map(approvalNotice)
    }

    /// The browser path: the courier typed the presence code the device's own page showed. The platform signs a grant
    /// and hands it, the sealed password and the code to the device over its channel; the device compares the code and
    /// applies, and its receipt completes the request. The platform never keeps the code.
    ///
    /// `courierAddress` and the device channel's address are compared for the history: a hint for the owner, not a gate.
    public func deliverWithPresenceCode(id: UUID, code: String, by account: Account, courierAddress: String?) async throws
        -> ResetRequestView
    {
        try await limiter.attempt(.presenceCodePerAccount, key: account.id.uuidString)
        let code = code.trimmingCharacters(in: .whitespaces)
        guard code.count == 6, code.allSatisfy(\.isASCII), code.allSatisfy(\.isNumber) else {
            throw LatchkeyError.invalidRequest("A presence code is the six digits the device's own page shows.")
        }
        let now = clock.now()
        let nonce = PresenceGrant.nonce()
        let outcome = try await store.transaction { session -> Outcome<(ResetGrantClaims, String)> in
            var request = try await Self.visibleRequest(id: id, to: account, in: session)
            if request.isDue(at: now) {
                let notifications = try await self.expire(&request, at: now, in: session)
                return Outcome(notifications: notifications, failure: .requestExpired(id: id))
            }
            let parties = try await ResetParties.load(request, in: session)
            let sealed: String
            do {
                try request.checkGrant(to: account.id, at: now)
                try await Self.checkCourierStillAllowed(account, parties: parties, at: now, in: session)
                guard let stored = request.sealedPassword else { throw LatchkeyError.grantInvalid("The request holds no sealed password.") }
                // Offline: nothing is spent, and the courier hears so at once.
                guard parties.device.isOnline(at: now) else { throw LatchkeyError.deviceOffline(serial: parties.device.serial) }
                sealed = stored
            } catch let error as LatchkeyError {
                try await self.audit(parties, action: "reset.granted", actor: account.id, at: now, in: session,
                                     outcome: "refused: \(error.code.rawValue)", detail: "presence code")
                return Outcome(failure: error)
            }
            try await session.resetRequests.recordGrant(requestId: request.id, serial: request.deviceSerial, nonce: nonce, at: now)
            let matches = courierAddress != nil && courierAddress == parties.device.channelAddress
            try await self.audit(parties, action: "reset.granted", actor: account.id, at: now, in: session, outcome: "granted",
                                 detail: "presence code; courier's address \(matches ? "matches" : "differs from") the device channel's")
            let expiresAt = min(now + GrantRules.grantLifetime, request.expiresAt)
            return Outcome(value: (ResetGrantClaims(requestId: request.id, serial: request.deviceSerial, nonce: nonce, issuedAt: now,
                                                    expiresAt: expiresAt), sealed))
        }
        let (claims, sealed) = try await finish(outcome)
        let grant = try await ResetGrant.sign(claims, with: signingKey)
        let delivery = PresenceDelivery(deliveryId: Base64URL.random(bytes: 16), requestId: id, grant: grant, sealedPassword: sealed,
                                        presenceCode: code)
        let answer = try await messenger.deliver(delivery, serial: claims.serial)
        guard let receipt = answer.receipt else {
            let refusal = answer.refusal ?? .init(code: .internalError, message: "The device gave no answer.")
            try await recordRefusedDelivery(id: id, by: account, code: refusal.code)
            throw refusal.code == .presenceCodeInvalid
                ? LatchkeyError.presenceCodeInvalid(refusal.message) : LatchkeyError.grantInvalid(refusal.message)
        }
        return try await complete(with: receipt, from: .courier(account))
    }

    private func recordRefusedDelivery(id: UUID, by account: Account, code: APIErrorCode) async throws {
        let now = clock.now()
        try await store.transaction { session in
            guard let request = try await session.resetRequests.find(id: id) else { return }
            try await self.audit(try await ResetParties.load(request, in: session), action: "reset.delivered", actor: account.id,
                                 at: now, in: session, outcome: "refused by the device: \(code.rawValue)", detail: "presence code")
        }
    }
}
