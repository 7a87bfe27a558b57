import Foundation
import Hummingbird
import LatchkeyProtocol

/// `/sites/**`: sites, their authorizations, and the devices bound to them.
struct SiteController {
    let sites: SiteService
    let devices: DeviceService
    let compatibility: CompatibilityList
    let clock: LatchkeyClock

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get(":id", use: show)
            .post(":id/authorizations", use: authorize)
            .delete(":id/authorizations/:installerId", use: revoke)
            .get(":id/devices", use: listDevices)
            .post(":id/devices", use: bind)
            .delete(":id/devices/:serial", use: unbind)
            .get(":id/audit", use: audit)
    }

    @Sendable func audit(_ request: Request, context: AppRequestContext) async throws -> Response {
        let siteId = try context.uuid("id", of: "site")
        let format = try AuditExport.format(of: request)
        return try AuditExport.response(try await sites.auditHistory(siteId: siteId, visibleTo: try context.requireAccount()), format,
                                        name: "latchkey-site-\(siteId)")
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

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.Site> {
        let form = try await request.decodeBody(API.CreateSite.self, context: context)
        let site = try await sites.create(name: form.name, address: form.address, by: try context.requireAccount())
        return EditedResponse(status: .created, response: API.Site(site, authorizations: []))
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> PagedResponse<API.Site> {
        PagedResponse(try await sites.sites(visibleTo: try context.requireAccount(), page: PageRequest(request)).map { API.Site($0) })
    }

    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> API.Site {
        let (site, authorizations) = try await sites.site(id: try context.uuid("id", of: "site"), visibleTo: try context.requireAccount())
        return API.Site(site, authorizations: authorizations)
    }

    @Sendable func authorize(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.SiteAuthorization> {
        let siteId = try context.uuid("id", of: "site")
        let form = try await request.decodeBody(API.GrantAuthorization.self, context: context)
        let granted = try await sites.authorize(
            siteId: siteId, installerEmail: form.installerEmail, permissions: form.permissions, expiresAt: form.expiresAt,
            by: try context.requireAccount())
        return EditedResponse(status: .created, response: API.SiteAuthorization(granted))
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> HTTPResponse.Status {
        try await sites.revoke(
            siteId: try context.uuid("id", of: "site"), installerId: try context.uuid("installerId", of: "installer"),
            by: try context.requireAccount())
        return .noContent
    }

    @Sendable func listDevices(_ request: Request, context: AppRequestContext) async throws -> PagedResponse<API.Device> {
        PagedResponse(try await sites.devices(siteId: try context.uuid("id", of: "site"), visibleTo: try context.requireAccount(),
                                              page: PageRequest(request))
            .map { API.Device($0, compatibility: compatibility, at: clock.now()) })
    }
}
