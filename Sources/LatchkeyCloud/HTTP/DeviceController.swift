import Foundation
import Hummingbird
import LatchkeyProtocol

/// `/devices/{serial}/**`: one device as a client needs it, its history, and asking for its password reset.
struct DeviceController {
    let devices: DeviceService
    let sites: SiteService
    let resets: PasswordResetService
    let compatibility: CompatibilityList
    let clock: LatchkeyClock

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get(use: detail)
            .get("audit", use: audit)
            .post("password-resets", use: requestReset)
    }

    @Sendable func requestReset(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.PasswordReset> {
        let form = try await request.decodeBody(API.RequestPasswordReset.self, context: context)
        let view = try await resets.request(
            serial: context.parameters.get("serial") ?? "", mode: form.mode, by: try context.requireAccount())
        return EditedResponse(
            status: .created, response: API.PasswordReset(view, reminder: API.PasswordReset.sameLANReminder(for: form.mode)))
    }

    @Sendable func audit(_ request: Request, context: AppRequestContext) async throws -> Response {
        let serial = context.parameters.get("serial") ?? ""
        let format = try AuditExport.format(of: request)
        let lines = try await sites.auditHistory(serial: serial, visibleTo: try context.requireAccount())
        return try AuditExport.response(lines, format, device: serial)
    }

    @Sendable func detail(_ request: Request, context: AppRequestContext) async throws -> API.DeviceDetail {
        let device = try await devices.detail(serial: context.parameters.get("serial") ?? "", visibleTo: try context.requireAccount())
        guard let identity = device.identity else {
            throw LatchkeyError.deviceOffline(serial: device.serial)
        }
        return API.DeviceDetail(device: API.Device(device, compatibility: compatibility, at: clock.now()),
                                signingKey: identity.signingKey, agreementKey: identity.agreementKey, bound: device.keysPinned,
                                certificateChain: identity.certificateChain)
    }
}
