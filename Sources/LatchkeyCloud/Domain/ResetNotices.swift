import Foundation
import LatchkeyProtocol

/// Everyone and everything a reset request concerns, loaded once so notices and audit lines can name them.
struct ResetParties: Sendable {
    var request: PasswordResetRequest
    var device: Device
    var site: Site
    var owner: Account
    var installer: Account

    static func load(_ request: PasswordResetRequest, in session: any StoreSession) async throws -> ResetParties {
        guard let found = try await session.resetRequests.parties(of: request) else {
            throw LatchkeyError.notFound("Password reset request \(request.id) refers to records that no longer exist.")
        }
        return ResetParties(request: request, device: found.device, site: found.site, owner: found.owner, installer: found.installer)
    }

    var deviceName: String { "\(device.model) (\(device.serial))" }

    /// Who is told of an outcome: the owner and the installer, or the owner alone for their own reset.
    var people: [Account] { installer.id == owner.id ? [owner] : [owner, installer] }
}

/// The inbox entries each step of a reset produces, for the owner and the installer. Titles and bodies are the
/// English text of the API; the portal renders `kind` in the reader's language.
enum ResetNotices {
    static let requestTitle = "Reset device password"

    static func requested(_ parties: ResetParties, window: TimeInterval, at now: Date) -> [AccountNotification] {
        // The owner's own request asks nobody: the answer of the request call is all the owner needs.
        guard parties.request.mode != .owner else { return [] }
        let courierNote =
            parties.request.mode == .offSite
            ? "Open this request on the device's LAN to set the new password."
            : "The installer is on site: approve now so the installer can finish from the device's LAN."
        return [
            notice(
                to: parties.owner, .resetRequested, requestTitle,
                "Installer \(parties.installer.name) (\(parties.installer.email)) asks to reset the admin password of "
                    + "\(parties.deviceName) at site '\(parties.site.name)'. The request is valid for "
                    + "\(duration(window)). \(courierNote)",
                parties, now)
        ]
    }

    static func approved(_ parties: ResetParties, at now: Date) -> [AccountNotification] {
        let onSite = parties.request.mode == .onSite
        return once([
            notice(
                to: parties.installer, .resetApproved, "Password reset approved",
                "The owner approved the password reset of \(parties.deviceName) at site '\(parties.site.name)'. "
                    + (onSite ? "Complete it now from the device's LAN." : "The owner completes it from the device's LAN."),
                parties, now),
            notice(
                to: parties.owner, .resetApproved, "Password reset approved",
                "You approved the password reset of \(parties.deviceName). "
                    + (onSite ? "The installer completes it on site." : "Complete it from the device's LAN."),
                parties, now),
        ], parties)
    }

    static func declined(_ parties: ResetParties, at now: Date) -> [AccountNotification] {
        once([
            notice(to: parties.installer, .resetDeclined, "Password reset declined",
                   "The owner declined the password reset of \(parties.deviceName) at site '\(parties.site.name)'.",
                   parties, now),
            notice(to: parties.owner, .resetDeclined, "Password reset declined",
                   "You declined the password reset of \(parties.deviceName) requested by \(parties.installer.name).",
                   parties, now),
        ], parties)
    }

    /// `reason` nil: the installer cancelled; otherwise what the owner did that ended it.
    static func cancelled(_ parties: ResetParties, reason: CancelReason?, at now: Date) -> [AccountNotification] {
        let why = reason.map { "by the owner (\($0.rawValue))" } ?? "by installer \(parties.installer.name)"
        return parties.people.map { account in
            notice(to: account, .resetCancelled, "Password reset cancelled",
                   "The password reset of \(parties.deviceName) at site '\(parties.site.name)' was cancelled \(why).", parties, now)
        }
    }

    static func completed(_ parties: ResetParties, at now: Date) -> [AccountNotification] {
        parties.people.map { account in
            notice(to: account, .resetCompleted, "Password reset successfully",
                   "The admin password of \(parties.deviceName) at site '\(parties.site.name)' was reset successfully.",
                   parties, now)
        }
    }

    static func expired(_ parties: ResetParties, at now: Date) -> [AccountNotification] {
        parties.people.map { account in
            notice(to: account, .resetExpired, "Password reset expired",
                   "The password reset request for \(parties.deviceName) at site '\(parties.site.name)' expired before it was completed.",
                   parties, now)
        }
    }

    /// The owner's own request has one person on both sides: they are told once, in the owner's words.
    private static func once(_ notices: [AccountNotification], _ parties: ResetParties) -> [AccountNotification] {
        guard parties.request.mode == .owner, let own = notices.last else { return notices }
        return [own]
    }

    private static func notice(
        to account: Account, _ kind: NotificationKind, _ title: String, _ body: String, _ parties: ResetParties,
        _ now: Date
    ) -> AccountNotification {
        AccountNotification(accountId: account.id, category: .services, kind: kind, title: title, body: body,
                            requestId: parties.request.id, createdAt: now)
    }

    /// "24 hours", "5 minutes", "90 seconds".
    static func duration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval.rounded())
        func plural(_ n: Int, _ unit: String) -> String { "\(n) \(unit)\(n == 1 ? "" : "s")" }
        if seconds % 3600 == 0 { return plural(seconds / 3600, "hour") }
        if seconds % 60 == 0 { return plural(seconds / 60, "minute") }
        return plural(seconds, "second")
    }
}
