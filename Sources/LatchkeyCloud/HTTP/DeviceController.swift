import Foundation
import Hummingbird
import LatchkeyProtocol

/// Binding devices to sites, and what a client needs to know about one device.
struct DeviceController {
    let devices: DeviceService
    let compatibility: CompatibilityList
    let clock: LatchkeyClock

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("sites/:id/devices", use: bind)
        group.delete("sites/:id/devices/:serial", use: unbind)
        group.get("devices/:serial", use: detail)
    }

    @Sendable func bind(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.Device> {
        let siteId = try context.uuid("id", of: "site")
        let form = try await request.decodeBody(API.BindDevice.self, context: context)
        let device = try await devices.bind(siteId: siteId, serial: form.serial, verificationCode: form.verificationCode,
                                            by: try context.requireAccount(), from: context.clientAddress)
        return EditedResponse(status: .created, response: API.Device(device, compatibility: compatibility, at: clock.now()))
    }

    @Sendable func unbind(_ request: Request, context: AppRequestContext) async throws -> HTTPResponse.Status {
        try await devices.unbind(siteId: try context.uuid("id", of: "site"), serial: context.parameters.get("serial") ?? "",
                                 by: try context.requireAccount())
        return .noContent
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
