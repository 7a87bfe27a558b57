import Foundation
import Hummingbird
import LatchkeyProtocol

/// Sites, their authorizations and their devices; and a device's audit history.
struct SiteController {
    let sites: SiteService
    let compatibility: CompatibilityList
    let clock: LatchkeyClock

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("sites", use: create)
        group.get("sites", use: list)
        group.get("sites/:id", use: show)
        group.post("sites/:id/authorizations", use: authorize)
        group.delete("sites/:id/authorizations/:installerId", use: revoke)
        group.get("sites/:id/devices", use: devices)
        group.get("devices/:serial/audit", use: audit)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<API.Site> {
        let form = try await request.decodeBody(API.CreateSite.self, context: context)
        let site = try await sites.create(name: form.name, address: form.address, by: try context.requireAccount())
        return EditedResponse(status: .created, response: API.Site(site, authorizations: []))
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> [API.Site] {
        try await sites.sites(visibleTo: try context.requireAccount()).map { API.Site($0) }
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

    @Sendable func devices(_ request: Request, context: AppRequestContext) async throws -> [API.Device] {
        try await sites.devices(siteId: try context.uuid("id", of: "site"), visibleTo: try context.requireAccount())
            .map { API.Device($0, compatibility: compatibility, at: clock.now()) }
    }

    @Sendable func audit(_ request: Request, context: AppRequestContext) async throws -> [API.AuditEntry] {
        let serial = context.parameters.get("serial") ?? ""
        return try await sites.auditHistory(serial: serial, visibleTo: try context.requireAccount()).map { entry in
            API.AuditEntry(sequence: entry.sequence ?? 0, at: entry.at, actorId: entry.actorId, deviceSerial: entry.deviceSerial,
                           requestId: entry.requestId, action: entry.action, outcome: entry.outcome, detail: entry.detail)
        }
    }
}
