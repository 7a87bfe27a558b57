import Foundation
import Hummingbird
import LatchkeyProtocol

// Domain → wire: the only place where domain types become the API's JSON shapes.

extension API.Account: ResponseEncodable {
    init(_ account: Account) {
        self.init(id: account.id, email: account.email, name: account.name, role: account.role, language: account.language,
                  createdAt: account.createdAt)
    }
}

extension API.Session: ResponseEncodable {}
extension API.Site: ResponseEncodable {
    init(_ site: Site, authorizations: [AuthorizedInstaller]? = nil) {
        self.init(id: site.id, name: site.name, address: site.address, ownerId: site.ownerId, createdAt: site.createdAt,
                  authorizations: authorizations?.map(API.SiteAuthorization.init))
    }
}

extension API.SiteAuthorization: ResponseEncodable {
    init(_ entry: AuthorizedInstaller) {
        let authorization = entry.authorization
        self.init(siteId: authorization.siteId, installerId: authorization.installerId, installerEmail: entry.installer.email,
                  installerName: entry.installer.name, permissions: authorization.permissions.sorted { $0.rawValue < $1.rawValue },
                  expiresAt: authorization.expiresAt, createdAt: authorization.createdAt)
    }
}

extension API.Device: ResponseEncodable {
    init(_ device: Device, compatibility: CompatibilityList, at now: Date) {
        self.init(device.listing, compatibility: compatibility, at: now)
    }

    init(_ device: DeviceListing, compatibility: CompatibilityList, at now: Date) {
        self.init(serial: device.serial, model: device.model, deviceType: device.deviceType, firmware: device.firmware,
                  siteId: device.siteId, online: device.isOnline(at: now),
                  compatible: compatibility.supports(model: device.model, firmware: device.firmware))
    }
}

extension API.PasswordReset: ResponseEncodable {
    init(_ view: ResetRequestView, reminder: String? = nil) {
        let request = view.request
        self.init(id: request.id, deviceSerial: request.deviceSerial, siteId: request.siteId, installerId: request.installerId,
                  mode: request.mode, status: view.status, createdAt: request.createdAt, expiresAt: request.expiresAt,
                  ownerEmailMasked: view.ownerEmailMasked, reminder: reminder)
    }

    /// Who must be on the device's LAN, said when the request is made.
    static func sameLANReminder(for mode: ResetMode) -> String {
        switch mode {
        case .offSite:
            "The owner's phone and the device must be on the same LAN when the owner resets the password."
        case .onSite:
            "Your phone and the device must be on the same LAN: stay on site until the reset completes."
        case .owner:
            "Approve it with the new password, then carry it from the device's LAN (or with the code its page shows) within the hour."
        }
    }
}

extension API.Notification: ResponseEncodable {
    init(_ notification: AccountNotification) {
        self.init(id: notification.id, category: notification.category, kind: notification.kind, title: notification.title,
                  body: notification.body, requestId: notification.requestId, createdAt: notification.createdAt,
                  read: notification.read)
    }
}

extension API.AuditEntry: ResponseEncodable {}
extension API.DeviceDetail: ResponseEncodable {}
extension API.Grant: ResponseEncodable {}
extension API.CompatibilityEntry: ResponseEncodable {}
extension API.KeySet: ResponseEncodable {}
