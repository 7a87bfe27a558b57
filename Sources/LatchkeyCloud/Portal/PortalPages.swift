import Foundation
import Hummingbird
import LatchkeyProtocol

/// The signed-in pages: each queries the domain, shapes what the template shows, and renders it.
struct PortalPages: Sendable {
    let controller: PortalController
    var renderer: PortalRenderer { controller.renderer }

    private func account(_ visit: PortalVisit) throws -> Account {
        guard let account = visit.account else { throw LatchkeyError.unauthenticated("Sign in first.") }
        return account
    }

    // MARK: - Sites & devices

    /// Sites a page at a time, each with its first devices: an installer with 500 sites, or an owner with 2,000
    /// devices, gets a page as fast as someone with one.
    @Sendable func sites(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let account = try account(visit)
        let page = try await controller.sites.sitesWithDevices(
            visibleTo: account, page: try PageRequest(request, limit: Self.sitesPerPage), perSite: Self.devicesPerSite)
        let rows = page.items.map { entry in
            let owned = entry.site.ownerId == account.id
            return SiteRow(id: entry.site.id.storedText, name: entry.site.name, address: entry.site.address ?? "", owned: owned,
                           devices: entry.devices.map { deviceRow($0, visit, history: owned) }, has_devices: !entry.devices.isEmpty,
                           more_devices: entry.more ? (owned ? "/sites/\(entry.site.id)" : "/reset?site=\(entry.site.id)") : nil)
        }
        return renderer.render(SitesPage(sites: rows, next_page: page.next.map(request.page(after:))), visit)
    }

    /// A phone's screenful or two: 500 rows (50 sites of 10) took 50 ms of CPU a page when swift-mustache rendered them
    /// (the benchmark's million devices, issue 13). The rest are on the site's own page, 50 a page.
    static let sitesPerPage = 20
    static let devicesPerSite = 10
    static let devicesPerPage = 50

    @Sendable func createSite(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let fields = try await FormFields(request)
        let site = try await controller.sites.create(name: fields["name"] ?? "", address: fields["address"], by: try account(visit))
        return visit.redirect(to: "/sites/\(site.id)")
    }

    func site(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let account = try account(visit)
        let (site, authorizations, devices) = try await controller.sites.siteWithDevices(
            id: try context.uuid("id", of: "site"), visibleTo: account, page: try PageRequest(request, limit: Self.devicesPerPage))
        guard let authorizations else { throw LatchkeyError.notFound("Only the site's owner manages it.") }
        let rows = authorizations.map { entry in
            AuthorizationRow(
                installer_id: entry.installer.id.storedText, installer_name: entry.installer.name, installer_email: entry.installer.email,
                site_id: site.id.storedText,
                permissions: entry.authorization.permissions.map { renderer.text("perm_\($0.rawValue)", visit) }.sorted().joined(separator: ", "),
                until: entry.authorization.expiresAt.map { Self.time($0, visit) } ?? renderer.text("until_revoked", visit))
        }
        return renderer.render(SitePage(site_id: site.id.storedText, site_name: site.name,
                                        devices: devices.items.map { deviceRow($0, visit, history: true) }, has_devices: !devices.items.isEmpty,
                                        next_page: devices.next.map(request.page(after:)), authorizations: rows), visit)
    }

    func bind(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let siteId = try context.uuid("id", of: "site")
        let fields = try await FormFields(request)
        _ = try await controller.devices.bind(siteId: siteId, serial: fields["serial"] ?? "", verificationCode: fields["code"] ?? "",
                                              by: try account(visit), from: context.clientAddress)
        return visit.redirect(to: "/sites/\(siteId)")
    }

    func authorize(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let siteId = try context.uuid("id", of: "site")
        let fields = try await FormFields(request)
        let permissions = Permission.allCases.filter { fields[$0.rawValue] != nil }
        var expiresAt: Date?
        if let date = fields["expires"] {
            guard let day = ISO8601DateFormatter.day.date(from: date) else { throw LatchkeyError.invalidRequest("'\(date)' is not a date.") }
            expiresAt = day + 86400
        }
        _ = try await controller.sites.authorize(siteId: siteId, installerEmail: fields["installer_email"] ?? "", permissions: permissions,
                                                 expiresAt: expiresAt, by: try account(visit))
        return visit.redirect(to: "/sites/\(siteId)")
    }

    func revoke(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let siteId = try context.uuid("id", of: "site")
        try await controller.sites.revoke(siteId: siteId, installerId: try context.uuid("installerId", of: "installer"), by: try account(visit))
        return visit.redirect(to: "/sites/\(siteId)")
    }

    func history(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let serial = context.parameters.get("serial") ?? ""
        let lines = try await controller.sites.auditHistory(serial: serial, visibleTo: try account(visit))
        return renderer.render(HistoryPage(
            heading: renderer.text("history_title", visit, ["device": serial]),
            entries: lines.reversed().map { line in
                HistoryRow(at: Self.time(line.entry.at, visit), at_iso: Self.iso(line.entry.at), sentence: sentence(line, visit),
                           outcome: outcome(line.entry.outcome, visit))
            }, serial: serial), visit)
    }

    /// The device's history as a download, for the signed-in owner (the API's export, with the portal's session).
    func historyExport(_ visit: PortalVisit, _ context: AppRequestContext, _ format: AuditExport.Format) async throws -> Response {
        let serial = context.parameters.get("serial") ?? ""
        let lines = try await controller.sites.auditHistory(serial: serial, visibleTo: try account(visit))
        return try AuditExport.response(lines, format, device: serial)
    }

    /// An audit line's outcome in the reader's language: "refused: <code>" reads as the refusal with its code; a value
    /// the catalogue does not know is shown as stored.
    private func outcome(_ stored: String, _ visit: PortalVisit) -> String {
        if stored.hasPrefix("refused: ") {
            return renderer.text("outcome_refused", visit, ["code": String(stored.dropFirst("refused: ".count))])
        }
        let key = "outcome_\(stored)"
        let text = renderer.text(key, visit)
        return text == key ? stored : text
    }

    /// "Ivan Bianchi requested the password reset (off-site)", in the reader's language.
    private func sentence(_ line: AuditLine, _ visit: PortalVisit) -> String {
        var parameters = ["actor": line.actorName ?? renderer.text("audit_someone", visit)]
        if line.entry.action == .resetRequested, let mode = line.entry.detail.flatMap(ResetMode.init(rawValue:)) {
            parameters["mode"] = renderer.text("mode_\(mode.rawValue)", visit).lowercased()
        } else {
            parameters["mode"] = "—"
        }
        return renderer.text("audit_\(line.entry.action.rawValue.replacingOccurrences(of: ".", with: "_"))", visit, parameters)
    }

    // MARK: - Device password reset

    @Sendable func resetForm(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let account = try account(visit)
        let chosen = request.uri.queryParameters.get("site").flatMap { UUID(storedText: String($0)) }
        // A choice among the first 500 sites, and the chosen site's devices a page at a time.
        let sites = try await controller.sites.sites(visibleTo: account, page: PageRequest(limit: PageRequest.maximumLimit))
        let devices = if let chosen {
            try await controller.sites.devices(siteId: chosen, visibleTo: account, page: try PageRequest(request, limit: PageRequest.defaultLimit))
        } else { Page<DeviceListing>(items: [], next: nil) }
        return renderer.render(ResetPage(
            sites: sites.items.map { SiteChoice(id: $0.id.storedText, name: $0.name, selected: $0.id == chosen) },
            site_chosen: chosen != nil, devices: devices.items.map { deviceRow($0, visit, history: false) },
            next_page: devices.next.map(request.page(after:))), visit)
    }

    @Sendable func sendReset(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let fields = try await FormFields(request)
        guard let mode = fields["mode"].flatMap(ResetMode.init(rawValue:)) else {
            throw LatchkeyError.invalidRequest("mode must be one of \(ResetMode.allowedValues).")
        }
        let serial = fields["device"] ?? ""
        // As the app does, the portal asks once more before anything is sent.
        guard fields["confirmed"] == "yes" else {
            let key = switch mode {
            case .onSite: "reset_confirm_onsite"
            case .offSite: "reset_confirm_offsite"
            case .owner: "reset_confirm_owner"
            }
            let question = renderer.text(key, visit, ["serial": serial])
            return renderer.render(ResetConfirmPage(device: serial, mode: mode.rawValue, question: question), visit)
        }
        let view = try await controller.resets.request(serial: serial, mode: mode, by: try account(visit))
        return visit.redirect(to: "/requests/\(view.request.id)")
    }

    @Sendable func requests(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let account = try account(visit)
        let page = try await controller.resets.list(for: account, status: nil, page: try PageRequest(request, limit: PageRequest.defaultLimit))
        let rows = page.items.map { requestRow($0, visit, account) }
        return renderer.render(RequestsPage(requests: rows, has_requests: !rows.isEmpty, next_page: page.next.map(request.page(after:))), visit)
    }

    func request(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let account = try account(visit)
        let view = try await controller.resets.get(id: try context.uuid("id", of: "password reset request"), for: account)
        let device = try await controller.devices.detail(serial: view.request.deviceSerial, visibleTo: account)
        let onSite = view.request.mode == .onSite
        // "Request sent, ask the owner" is for the installer's off-site request; the owner's own needs no asking.
        let offSitePending = view.request.mode == .offSite && view.status == .pending
        return renderer.render(RequestPage(
            row: requestRow(view, visit, account),
            heading: renderer.text(onSite ? "countdown_title" : (offSitePending ? "confirm_title" : "reset_title"), visit),
            device_model: device.model,
            offsite_pending: offSitePending,
            onsite_open: onSite && view.status.isOpen,
            onsite_pending: onSite && view.status == .pending,
            approved_onsite: onSite && view.status == .approved,
            // The LAN matters to the courier while the request can still be carried.
            lan_note: view.status.isOpen && account.id == view.request.courierId,
            confirmation: renderer.text("confirm_offsite", visit, ["owner": view.ownerEmailMasked]),
            countdown_ask: renderer.text("countdown_ask", visit, ["owner": view.ownerEmailMasked]),
            approved_next: renderer.text("approved_onsite_next", visit, ["id": view.request.id.storedText]),
            approval: approval(view, device, visit, account)), visit)
    }

    enum Ending { case cancel, decline }

    func end(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext, action: Ending) async throws -> Response {
        let id = try context.uuid("id", of: "password reset request")
        switch action {
        case .cancel: _ = try await controller.resets.cancel(id: id, by: try account(visit))
        case .decline: _ = try await controller.resets.decline(id: id, by: try account(visit))
        }
        return visit.redirect(to: "/requests/\(id)")
    }

    // MARK: - Notifications

    @Sendable func notifications(_ request: Request, _ visit: PortalVisit) async throws -> Response {
        let services = request.uri.queryParameters.get("category") == "services"
        let account = try account(visit)
        let inbox = try await controller.inbox.list(for: account, category: services ? .services : nil,
                                                    page: try PageRequest(request, limit: PageRequest.defaultLimit))
        // Each entry names its device and site (one query for the page).
        let subjects = try await controller.inbox.subjects(of: inbox.items, for: account, at: controller.clock.now())
        let rows = inbox.items.map { notice in
            NotificationRow(id: notice.id.storedText, title: renderer.text("kind_\(notice.kind.rawValue)", visit),
                            request_id: notice.requestId?.storedText, created_at: Self.time(notice.createdAt, visit),
                            created_at_iso: Self.iso(notice.createdAt), read: notice.read,
                            about: notice.requestId.flatMap { subjects[$0] }.map { "\($0.deviceSerial) · \($0.siteName)" })
        }
        return renderer.render(NotificationsPage(notifications: rows, services_tab: services, next_page: inbox.next.map(request.page(after:))), visit)
    }

    func notification(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let account = try account(visit)
        let notice = try await controller.inbox.notice(id: try context.uuid("id", of: "notification"), of: account)
        guard let requestId = notice.requestId else { return visit.redirect(to: "/notifications") }
        let view = try await controller.resets.get(id: requestId, for: account)
        let device = try await controller.devices.detail(serial: view.request.deviceSerial, visibleTo: account)
        let (site, _) = try await controller.sites.site(id: view.request.siteId, visibleTo: account)
        return renderer.render(NotificationPage(
            row: requestRow(view, visit, account), title: renderer.text("kind_\(notice.kind.rawValue)", visit), device_model: device.model,
            site_name: site.name, installer_name: view.installerName,
            // Decline is for a request still waiting: once approved, the owner's part is done.
            pending: view.status == .pending && account.id == view.request.ownerId,
            how_to: renderer.text("detail_how", visit, ["id": requestId.storedText]),
            approval: approval(view, device, visit, account)), visit)
    }

    /// Opening a notification from the list marks it read (a POST: a GET never changes anything), then shows it.
    func openNotification(_ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let notice = try await controller.inbox.markRead(id: try context.uuid("id", of: "notification"), by: try account(visit))
        return visit.redirect(to: notice.requestId == nil ? "/notifications" : "/notifications/\(notice.id)")
    }

    /// What the approval and presence-code forms need: the key to seal to (from the device's certificate, checked
    /// when the device connected), and where on the LAN to read the code.
    private func approval(_ view: ResetRequestView, _ device: Device, _ visit: PortalVisit, _ account: Account) -> ApprovalForms {
        let request = view.request
        let address = device.lanAddresses.first.map { "http://\($0)/" }
        return ApprovalForms(
            can_approve: view.status == .pending && account.id == request.ownerId && device.identity != nil,
            can_deliver: view.status == .approved && account.id == request.courierId,
            agreement_key: device.identity?.agreementKey ?? "",
            owner_carries: request.mode != .onSite,
            where_to_read: address.map { renderer.text("approve_where", visit, ["address": $0]) } ?? renderer.text("approve_where_unknown", visit))
    }

    /// The owner approves with the password sealed in the page; the device then shows a presence code for it.
    func approve(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let id = try context.uuid("id", of: "password reset request")
        let fields = try await FormFields(request)
        _ = try await controller.resets.approve(id: id, sealedPassword: fields["sealed"] ?? "", by: try account(visit))
        return visit.redirect(to: "/requests/\(id)")
    }

    /// The courier types the presence code the device's own page showed.
    func deliver(_ request: Request, _ visit: PortalVisit, _ context: AppRequestContext) async throws -> Response {
        let id = try context.uuid("id", of: "password reset request")
        let fields = try await FormFields(request)
        _ = try await controller.resets.deliverWithPresenceCode(id: id, code: fields["presence_code"] ?? "", by: try account(visit),
                                                                courierAddress: context.clientAddress)
        return visit.redirect(to: "/requests/\(id)")
    }

    // MARK: - Rows

    private func deviceRow(_ device: DeviceListing, _ visit: PortalVisit, history: Bool) -> DeviceRow {
        var reason = ""
        do {
            try controller.compatibility.checkSupports(model: device.model, firmware: device.firmware)
        } catch {
            if case .deviceNotCompatible(_, _, let minimum?) = error {
                reason = renderer.text("reset_needs_firmware", visit, ["minimum": minimum])
            } else {
                reason = renderer.text("reset_not_listed", visit)
            }
        }
        return DeviceRow(serial: device.serial, model: device.model, firmware: device.firmware,
                         type_label: renderer.text("type_\(device.deviceType.rawValue)", visit),
                         online: device.isOnline(at: controller.clock.now()), compatible: reason.isEmpty, reason: reason,
                         history_link: history, own_reset: history && reason.isEmpty)
    }

    private func requestRow(_ view: ResetRequestView, _ visit: PortalVisit, _ account: Account) -> RequestRow {
        let left = Int(view.request.expiresAt.timeIntervalSince(controller.clock.now()))
        return RequestRow(id: view.request.id.storedText, device_serial: view.request.deviceSerial, status: view.status.rawValue,
                          status_label: renderer.text("status_\(view.status.rawValue)", visit),
                          mode_label: renderer.text("mode_\(view.request.mode.rawValue)", visit),
                          time_left: view.status.isOpen ? TimeText.countdown(left) : "—",
                          expires_at: Self.iso(view.request.expiresAt),
                          open: view.status.isOpen, live: view.status.isOpen,
                          cancellable: view.status.isOpen && account.id == view.request.installerId)
    }

    /// `26/11/2026 10:59 UTC` in Italian, `2026-11-26 10:59 UTC` in English: what the page says before its script
    /// (`time.js`) shows it in the reader's own time zone.
    static func time(_ date: Date, _ visit: PortalVisit) -> String { PortalCatalog.time(date, visit.language) }

    static func iso(_ date: Date) -> String { date.wireText }
}

extension ISO8601DateFormatter {
    /// `2026-11-30`, as a date input sends it.
    nonisolated(unsafe) static let day: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter
    }()
}
