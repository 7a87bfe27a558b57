import Foundation
import Mustache

// The portal's view models: one struct per page, built by its query in `PortalPages`, read by its template. Property
// names are the template's (snake case, as Mustache templates are written); the compiler checks every page gives
// what its template shows.

/// A page's model, and the template that shows it.
protocol PortalPage: Sendable {
    static var template: String { get }
}

/// What every template may also read beside its page: the language, the CSRF token, who is signed in (the catalogue's
/// texts are written into the templates: `TranslatedTemplates`). Mustache looks names up here, then in the page's
/// properties.
struct PortalPageContext: MustacheParent {
    let common: [String: Any]
    /// The page model as dictionaries, read once: swift-mustache reflects over a struct (Mirror) at every lookup;
    /// measured, that was half a portal page's CPU. The site pages answer their lookups themselves: reflecting over
    /// them, even once, was 8 % of the CPU of the *Sito e dispositivo* page (perf, issue 13).
    let page: any MustacheParent

    init(common: [String: Any], page: any PortalPage) {
        self.common = common
        self.page = Self.plain(page) as? any MustacheParent ?? [String: Any]()
    }

    func child(named name: String) -> Any? {
        common[name] ?? page.child(named: name)
    }

    /// Structs become dictionaries and arrays are converted element by element; an optional that holds nothing is
    /// left out, so it reads as missing (and `{{#x}}` hides its section), as swift-mustache reads a nil property.
    static func plain(_ value: Any) -> Any? {
        // Most values are text or flags: reflecting each of them (a Mirror per field of every row) was a quarter of the
        // CPU of a page of 200 devices (perf, issue 13). An optional holding text or a flag is read through the casts too.
        switch value {
        case let text as String: return text
        case let flag as Bool: return flag
        case let number as Int: return number
        case let row as any MustacheParent: return row
        default: break
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional: return mirror.children.first.flatMap { plain($0.value) }
        case .struct:
            var fields: [String: Any] = [:]
            for child in mirror.children {
                if let label = child.label, let field = plain(child.value) { fields[label] = field }
            }
            return fields
        case .collection: return mirror.children.compactMap { plain($0.value) }
        default: return value
        }
    }
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
extension DeviceRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "serial": self.serial
        case "model": self.model
        case "firmware": self.firmware
        case "type_label": self.type_label
        case "online": self.online
        case "compatible": self.compatible
        case "reason": self.reason
        case "history_link": self.history_link
        case "own_reset": self.own_reset
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

/// The requests and notifications pages list 100 rows: reflecting over each (`Mirror`, in `PortalPageContext.plain`)
/// was about a third of those pages' CPU (perf, issue 13), so their rows answer lookups themselves.
extension RequestRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "id": self.id
        case "device_serial": self.device_serial
        case "status": self.status
        case "status_label": self.status_label
        case "mode_label": self.mode_label
        case "time_left": self.time_left
        case "expires_at": self.expires_at
        case "open": self.open
        case "live": self.live
        case "cancellable": self.cancellable
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

extension SiteRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "id": self.id
        case "name": self.name
        case "address": self.address
        case "owned": self.owned
        case "devices": self.devices
        case "has_devices": self.has_devices
        case "more_devices": self.more_devices
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

extension AuthorizationRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "installer_id": self.installer_id
        case "installer_name": self.installer_name
        case "installer_email": self.installer_email
        case "site_id": self.site_id
        case "permissions": self.permissions
        case "until": self.until
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

extension NotificationRow: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "id": self.id
        case "title": self.title
        case "request_id": self.request_id
        case "created_at": self.created_at
        case "created_at_iso": self.created_at_iso
        case "read": self.read
        case "about": self.about
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

extension SitesPage: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "sites": self.sites
        case "next_page": self.next_page
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

extension SitePage: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "site_id": self.site_id
        case "site_name": self.site_name
        case "devices": self.devices
        case "has_devices": self.has_devices
        case "next_page": self.next_page
        case "authorizations": self.authorizations
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

extension RequestsPage: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "requests": self.requests
        case "has_requests": self.has_requests
        case "next_page": self.next_page
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

extension NotificationsPage: MustacheParent {
    func child(named name: String) -> Any? {
        switch name {
        case "notifications": self.notifications
        case "services_tab": self.services_tab
        case "next_page": self.next_page
        default: nil
        }
    }
}
