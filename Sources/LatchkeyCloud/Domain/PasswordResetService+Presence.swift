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
        let (claims, sealed) = try await issueGrant(id: id, nonce: PresenceGrant.nonce(), by: account, refusedDetail: "presence code") {
            _, parties, _, now in
            // Offline: nothing is spent, and the courier hears so at once.
            guard parties.device.isOnline(at: now) else { throw LatchkeyError.deviceOffline(serial: parties.device.serial) }
            let matches = courierAddress != nil && courierAddress == parties.device.channelAddress
            return "presence code; courier's address \(matches ? "matches" : "differs from") the device channel's"
        }
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
            try await self.audit(try await ResetParties.load(request, in: session), action: .resetDelivered, actor: account.id,
                                 at: now, in: session, outcome: "refused by the device: \(code.rawValue)", detail: "presence code")
        }
    }
}
