import ArgumentParser
import Foundation
import LatchkeyClient
import LatchkeyProtocol

struct Authorize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Let an installer work on your site (owners).")
    @OptionGroup var options: ClientOptions
    @Option(help: "The site's id.") var site: UUID
    @Option(help: "The installer's e-mail.") var installer: String
    @Option(help: "Comma-separated: view, configure, password_reset.") var permissions: String = "view,password_reset"
    @Option(name: .customLong("for"), help: "How long, e.g. 8h or 7d (default: until revoked).") var duration: String?

    func run() async throws {
        var granted: [Permission] = []
        for name in permissions.split(separator: ",") {
            guard let permission = Permission(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("'\(name)' is not one of \(Permission.allowedValues).")
            }
            granted.append(permission)
        }
        var expiresAt: Date?
        if let duration {
            guard let seconds = TimeText.seconds(duration) else { throw ValidationError("--for takes a duration such as 90m, 8h or 7d.") }
            expiresAt = Date() + seconds
        }
        let client = try options.client()
        let authorization = try await attempt {
            try await client.authorize(site: site, installerEmail: installer, permissions: granted, expiresAt: expiresAt)
        }
        try options.show(authorization, "\(authorization.installerName) <\(authorization.installerEmail)> may now "
            + authorization.permissions.map(\.rawValue).joined(separator: ", ")
            + (authorization.expiresAt.map { " until \($0.formatted(.iso8601))" } ?? " until you revoke it") + ".")
    }
}

struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Take an installer's authorization away; their open requests end.")
    @OptionGroup var options: ClientOptions
    @Option(help: "The site's id.") var site: UUID
    @Option(help: "The installer's e-mail.") var installer: String

    func run() async throws {
        let client = try options.client()
        let details = try await attempt { try await client.site(site) }
        guard let authorization = details.authorizations?.first(where: { $0.installerEmail == installer.lowercased() }) else {
            throw CLIError("\(installer) is not authorized on site \(details.name).")
        }
        try await attempt { try await client.revoke(site: site, installer: authorization.installerId) }
        say("Revoked \(installer) on \(details.name).")
    }
}

struct Bind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bind a connected device to your site with the code on its label.")
    @OptionGroup var options: ClientOptions
    @Option(help: "The site's id.") var site: UUID
    @Option(help: "The device's serial number.") var serial: String
    @Option(help: "The six-letter verification code on the device's label.") var code: String

    func run() async throws {
        let client = try options.client()
        let device = try await attempt { try await client.bind(site: site, serial: serial, verificationCode: code) }
        try options.show(device, "Bound \(device.model) \(device.serial) to the site; its keys are pinned.")
    }
}

struct Notifications: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Your notifications (--services: the Services tab; --follow: live).")
    @OptionGroup var options: ClientOptions
    @Flag(help: "Only Services: reset requests and their outcome.") var services = false
    @Flag(help: "Keep printing new notifications as they arrive.") var follow = false

    func run() async throws {
        let client = try options.client()
        let category: NotificationCategory? = services ? .services : nil
        let inbox = try await attempt { try await client.notifications(category: category) }
        for notification in inbox.reversed() { try print(notification) }
        if inbox.isEmpty && !options.json { say("No notifications.") }
        guard follow else { return }
        for try await notification in try client.notificationStream() where category == nil || notification.category == category {
            try print(notification)
        }
    }

    private func print(_ notification: API.Notification) throws {
        try options.show(notification, "\(notification.createdAt.formatted(.iso8601))  \(notification.title)\n    \(notification.body)"
            + (notification.requestId.map { "\n    request: \($0)" } ?? ""))
    }
}
