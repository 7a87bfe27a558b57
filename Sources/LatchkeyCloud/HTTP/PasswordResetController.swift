import Foundation
import Hummingbird
import LatchkeyProtocol

/// `/password-resets/**`: the reset-request lifecycle over HTTP (a request is asked for under its device).
struct PasswordResetController {
    let resets: PasswordResetService

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get(use: list)
            .get(":id", use: show)
            .post(":id/approve", use: approve)
            .post(":id/decline", use: decline)
            .post(":id/cancel", use: cancel)
            .post(":id/grant", use: grant)
            .post(":id/receipt", use: receipt)
            .post(":id/presence", use: presence)
    }

    /// The browser path: the courier typed the code the device's own page showed; the platform delivers over the
    /// device's channel and answers the completed request.
    @Sendable func presence(_ request: Request, context: AppRequestContext) async throws -> API.PasswordReset {
        let form = try await request.decodeBody(API.PresenceCodeDelivery.self, context: context)
        let view = try await resets.deliverWithPresenceCode(id: try requestId(context), code: form.presenceCode,
                                                            by: try context.requireAccount(), courierAddress: context.clientAddress)
        return API.PasswordReset(view)
    }

    /// The courier, on the device's LAN, trades the device's proximity proof for the grant and the sealed password.
    @Sendable func grant(_ request: Request, context: AppRequestContext) async throws -> API.Grant {
        let id = try requestId(context)
        let form = try await request.decodeBody(API.GrantRequest.self, context: context)
        let issued = try await resets.grant(id: id, proof: form.proximityProof, by: try context.requireAccount())
        return API.Grant(grant: issued.token, sealedPassword: issued.sealedPassword, expiresAt: issued.expiresAt)
    }

    @Sendable func receipt(_ request: Request, context: AppRequestContext) async throws -> API.PasswordReset {
        let id = try requestId(context)
        let form = try await request.decodeBody(API.ReceiptDelivery.self, context: context)
        guard form.receipt.requestId == id else { throw LatchkeyError.receiptInvalid("The receipt is for another request.") }
        return API.PasswordReset(try await resets.complete(with: form.receipt, from: .courier(try context.requireAccount())))
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> PagedResponse<API.PasswordReset> {
        let status = try request.uri.queryParameters.get("status").map { text in
            guard let status = ResetStatus(rawValue: text) else {
                throw LatchkeyError.invalidRequest("status must be one of \(ResetStatus.allowedValues).")
            }
            return status
        }
        return PagedResponse(try await resets.list(for: try context.requireAccount(), status: status, page: PageRequest(request))
            .map { API.PasswordReset($0) })
    }

    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> API.PasswordReset {
        API.PasswordReset(try await resets.get(id: try requestId(context), for: try context.requireAccount()))
    }

    @Sendable func approve(_ request: Request, context: AppRequestContext) async throws -> API.PasswordReset {
        let id = try requestId(context)
        let form = try await request.decodeBody(API.ApprovePasswordReset.self, context: context)
        return API.PasswordReset(try await resets.approve(id: id, sealedPassword: form.sealedPassword, by: try context.requireAccount()))
    }

    @Sendable func decline(_ request: Request, context: AppRequestContext) async throws -> API.PasswordReset {
        API.PasswordReset(try await resets.decline(id: try requestId(context), by: try context.requireAccount()))
    }

    @Sendable func cancel(_ request: Request, context: AppRequestContext) async throws -> API.PasswordReset {
        API.PasswordReset(try await resets.cancel(id: try requestId(context), by: try context.requireAccount()))
    }

    private func requestId(_ context: AppRequestContext) throws -> UUID {
        try context.uuid("id", of: "password reset request")
    }
}
