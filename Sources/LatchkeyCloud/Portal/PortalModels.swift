import Foundation

// The portal's view models: one struct per page, built by its query in `PortalPages`, read by its template. Property
// names are the template's (snake case, as Mustache templates are written); the compiler checks every page gives
// what its template shows.

/// A page's model, and the template that shows it.
protocol PortalPage: Sendable {
    static var template: String { get }
}

// MARK: - Rows

struct DeviceRow: Sendable {
    let serial: String
    let model: String
    let firmware: String
    let type_label: String
    let online: Bool
    let compatible: Bool
    let reason: String
    let history_link: Bool
    /// The owner's own reset of this device: offered to its owner when the device is compatible.
    let own_reset: Bool
}

/// The rows a long page repeats (a sites page shows 200 devices) answer their template's lookups themselves: turning
/// each into a dictionary first reflected over every row (`Mirror`), a fifth of such a page's CPU (perf, issue 13).
/// `rowsAnswerEveryFieldTheyHave` checks that every field is answered.
extension DeviceRow: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "serial": .text(self.serial)
        case "model": .text(self.model)
        case "firmware": .text(self.firmware)
        case "type_label": .text(self.type_label)
        case "online": .flag(self.online)
        case "compatible": .flag(self.compatible)
        case "reason": .text(self.reason)
        case "history_link": .flag(self.history_link)
        case "own_reset": .flag(self.own_reset)
        default: nil
        }
    }
}

struct RequestRow: Sendable {
    let id: String
    let device_serial: String
    let status: String
    let status_label: String
    let mode_label: String
    let time_left: String
    let expires_at: String
    let open: Bool
    let live: Bool
    let cancellable: Bool
}

/// The requests and notifications pages list 100 rows: reflecting over each (`Mirror`, in `PortalValue(reflecting:)`)
/// was about a third of those pages' CPU (perf, issue 13), so their rows answer lookups themselves.
extension RequestRow: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "id": .text(self.id)
        case "device_serial": .text(self.device_serial)
        case "status": .text(self.status)
        case "status_label": .text(self.status_label)
        case "mode_label": .text(self.mode_label)
        case "time_left": .text(self.time_left)
        case "expires_at": .text(self.expires_at)
        case "open": .flag(self.open)
        case "live": .flag(self.live)
        case "cancellable": .flag(self.cancellable)
        default: nil
        }
    }
}

struct SiteRow: Sendable {
    let id: String
    let name: String
    let address: String
    let owned: Bool
    let devices: [DeviceRow]
    let has_devices: Bool
    /// Where the rest of the site's devices are, when the sites page shows only the first ones.
    let more_devices: String?
}

extension SiteRow: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "id": .text(self.id)
        case "name": .text(self.name)
        case "address": .text(self.address)
        case "owned": .flag(self.owned)
        case "devices": self.devices.portalValue
        case "has_devices": .flag(self.has_devices)
        case "more_devices": self.more_devices.portalValue
        default: nil
        }
    }
}

struct AuthorizationRow: Sendable {
    let installer_id: String
    let installer_name: String
    let installer_email: String
    let site_id: String
    let permissions: String
    let until: String
}

extension AuthorizationRow: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "installer_id": .text(self.installer_id)
        case "installer_name": .text(self.installer_name)
        case "installer_email": .text(self.installer_email)
        case "site_id": .text(self.site_id)
        case "permissions": .text(self.permissions)
        case "until": .text(self.until)
        default: nil
        }
    }
}

struct HistoryRow: Sendable {
    let at: String
    let at_iso: String
    /// The line as a sentence in the reader's language: who did what.
    let sentence: String
    let outcome: String
}

struct NotificationRow: Sendable {
    let id: String
    let title: String
    let request_id: String?
    let created_at: String
    let created_at_iso: String
    let read: Bool
    let about: String?
}

extension NotificationRow: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "id": .text(self.id)
        case "title": .text(self.title)
        case "request_id": self.request_id.portalValue
        case "created_at": .text(self.created_at)
        case "created_at_iso": .text(self.created_at_iso)
        case "read": .flag(self.read)
        case "about": self.about.portalValue
        default: nil
        }
    }
}

struct CompatibilityRow: Sendable {
    let model: String
    let type_label: String
    let min_firmware: String
}

struct SiteChoice: Sendable {
    let id: String
    let name: String
    let selected: Bool
}

/// The approval and presence-code forms (`approve_form`), shown on both request pages.
struct ApprovalForms: Sendable {
    let can_approve: Bool
    let can_deliver: Bool
    /// X25519, base64url: from the device's certificate, checked when it connected.
    let agreement_key: String
    let owner_carries: Bool
    let where_to_read: String
}

// MARK: - Pages

struct SignInPage: PortalPage {
    static let template = "signin"
    /// The page to return to after signing in (checked by `SignInReturn`).
    var next: String?
}

struct SignUpPage: PortalPage {
    static let template = "signup"
}

struct ErrorPage: PortalPage {
    static let template = "error"
    let code: String
    let message: String
    let back: String
    let open_request: String?
}

struct CompatibilityPage: PortalPage {
    static let template = "compatibility"
    let entries: [CompatibilityRow]
    let has_entries: Bool
    let query: String
}

struct SitesPage: PortalPage {
    static let template = "sites"
    let sites: [SiteRow]
    let next_page: String?
}

extension SitesPage: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "sites": self.sites.portalValue
        case "next_page": self.next_page.portalValue
        default: nil
        }
    }
}

struct SitePage: PortalPage {
    static let template = "site"
    let site_id: String
    let site_name: String
    let devices: [DeviceRow]
    let has_devices: Bool
    let next_page: String?
    let authorizations: [AuthorizationRow]
}

extension SitePage: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "site_id": .text(self.site_id)
        case "site_name": .text(self.site_name)
        case "devices": self.devices.portalValue
        case "has_devices": .flag(self.has_devices)
        case "next_page": self.next_page.portalValue
        case "authorizations": self.authorizations.portalValue
        default: nil
        }
    }
}

struct HistoryPage: PortalPage {
    static let template = "history"
    let heading: String
    let entries: [HistoryRow]
    let serial: String
}

struct ResetPage: PortalPage {
    static let template = "reset"
    let sites: [SiteChoice]
    let site_chosen: Bool
    let devices: [DeviceRow]
    let next_page: String?
}

struct ResetConfirmPage: PortalPage {
    static let template = "reset_confirm"
    let device: String
    let mode: String
    let question: String
}

struct RequestsPage: PortalPage {
    static let template = "requests"
    let requests: [RequestRow]
    let has_requests: Bool
    let next_page: String?
}

extension RequestsPage: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "requests": self.requests.portalValue
        case "has_requests": .flag(self.has_requests)
        case "next_page": self.next_page.portalValue
        default: nil
        }
    }
}

/// The installer's (and owner's) page of one request: its state live, and the form that moves it on.
struct RequestPage: PortalPage {
    static let template = "request"
    let row: RequestRow
    let heading: String
    let device_model: String
    let offsite_pending: Bool
    let onsite_open: Bool
    /// Only while the owner has yet to answer is the installer told to ask for approval.
    let onsite_pending: Bool
    let approved_onsite: Bool
    let lan_note: Bool
    let confirmation: String
    let countdown_ask: String
    let approved_next: String
    let approval: ApprovalForms
}

/// The owner's page of a request reached from a notification: who asks for what, and the approval form.
struct NotificationPage: PortalPage {
    static let template = "notification"
    let row: RequestRow
    let title: String
    let device_model: String
    let site_name: String
    let installer_name: String
    let pending: Bool
    let how_to: String
    let approval: ApprovalForms
}

struct NotificationsPage: PortalPage {
    static let template = "notifications"
    let notifications: [NotificationRow]
    let services_tab: Bool
    let next_page: String?
}

extension NotificationsPage: PortalObject {
    func value(named name: String) -> PortalValue? {
        switch name {
        case "notifications": self.notifications.portalValue
        case "services_tab": .flag(self.services_tab)
        case "next_page": self.next_page.portalValue
        default: nil
        }
    }
}
