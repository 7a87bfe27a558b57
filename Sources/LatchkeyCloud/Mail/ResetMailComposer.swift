import Foundation
import LatchkeyProtocol
import Mustache

/// Writes a queued `ResetMail` as the e-mail its reader gets: subject, plain text and HTML in the reader's language,
/// from the portal's catalogues (one place for every word), with the link to the request page under `--public-url`.
struct ResetMailComposer: Sendable {
    let catalog: PortalCatalog
    let library: MustacheLibrary
    let from: MailAddress
    let publicURL: URL

    static func bundled(from: MailAddress, publicURL: URL) async throws -> ResetMailComposer {
        guard let directory = PortalCatalog.templatesDirectory else { throw LatchkeyError.notFound("The mail templates are missing.") }
        let library = MustacheLibrary(templates: try TranslatedTemplates.sources(in: directory).mapValues { try PortalHTML.template($0.text) })
        return ResetMailComposer(catalog: try .bundled(), library: library, from: from, publicURL: publicURL)
    }

    /// What the message says, before it is laid out as text and as HTML.
    struct Content: Sendable {
        var subject: String
        var greeting: String
        var paragraphs: [String]
        var facts: [(label: String, value: String)]
        var link: URL
    }

    /// Throws `MailFailure.unsendable` when the recipient's address cannot be written into a header.
    func message(for queued: QueuedMail, at date: Date) throws(MailFailure) -> MailMessage {
        guard let to = MailAddress(queued.recipient, name: queued.mail.recipientName) else {
            throw .unsendable("the recipient's address cannot be written into a header")
        }
        let content = content(queued.mail, queued.language)
        guard let html = html(content, queued.language) else { throw .unsendable("the mail template is missing") }
        let host = publicURL.host ?? "latchkey"
        return MailMessage(
            from: from, to: to, subject: content.subject, text: text(content, queued.language), html: html,
            language: queued.language, date: date, messageID: "<\(queued.id.uuidString.lowercased())@\(host)>")
    }

    func content(_ mail: ResetMail, _ language: Language) -> Content {
        func say(_ key: String) -> String {
            catalog.text(key, language, [
                "name": mail.recipientName, "installer": mail.installerName, "installer_email": mail.installerEmail,
                "device": "\(mail.deviceModel) (\(mail.deviceSerial))", "site": mail.siteName,
            ])
        }
        var paragraphs: [String]
        switch mail.event {
        case .requested:
            paragraphs = [say("mail_requested"), say(mail.mode == .onSite ? "mail_requested_on_site" : "mail_requested_off_site"),
                          say("mail_requested_unasked")]
        case .completed: paragraphs = [say("mail_completed")]
        case .declined: paragraphs = [say(mail.toOwner ? "mail_declined_owner" : "mail_declined_installer")]
        case .cancelled:
            switch mail.cancelReason {
            case nil: paragraphs = [say("mail_cancelled_installer")]
            case .authorizationRevoked: paragraphs = [say("mail_cancelled_authorization_revoked")]
            case .deviceUnbound: paragraphs = [say("mail_cancelled_device_unbound")]
            }
        case .expired: paragraphs = [say("mail_expired")]
        }
        var facts = [
            (say("mail_fact_device"), "\(mail.deviceModel) (\(mail.deviceSerial))"), (say("mail_fact_site"), mail.siteName),
        ]
        if mail.mode != .owner { facts.append((say("mail_fact_installer"), "\(mail.installerName) (\(mail.installerEmail))")) }
        facts.append((say("mail_fact_mode"), say("mode_\(mail.mode.rawValue)")))
        if mail.event == .requested { facts.append((say("mail_fact_deadline"), PortalCatalog.time(mail.expiresAt, language))) }
        return Content(
            subject: "Latchkey: " + say("mail_subject_\(mail.event.rawValue)"), greeting: say("mail_greeting"), paragraphs: paragraphs,
            facts: facts.map { (label: $0.0, value: MailMessage.oneLine($0.1)) },
            link: publicURL.appendingPathComponent("requests").appendingPathComponent(mail.requestId.uuidString.lowercased()))
    }

    func text(_ content: Content, _ language: Language) -> String {
        var lines = [content.greeting, ""]
        for paragraph in content.paragraphs { lines += [paragraph, ""] }
        lines += content.facts.map { "\($0.label): \($0.value)" }
        lines += ["", "\(catalog.text("mail_open", language)): \(content.link.absoluteString)", "", "-- ",
                  catalog.text("mail_footer", language)]
        return lines.joined(separator: "\n") + "\n"
    }

    func html(_ content: Content, _ language: Language) -> String? {
        let context: [String: Any] = [
            "lang": language.rawValue, "subject": content.subject, "greeting": content.greeting, "paragraphs": content.paragraphs,
            "facts": content.facts.map { ["label": $0.label, "value": $0.value] },
            "link": ["url": content.link.absoluteString, "label": catalog.text("mail_open", language)],
            "footer": catalog.text("mail_footer", language),
        ]
        return library.render(context, withTemplate: "mail_html")
    }
}
