import ArgumentParser
import Foundation
import LatchkeyClient
import LatchkeyProtocol

struct Reset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device password reset: request, list, status, watch, approve, decline, cancel.",
        subcommands: [Request.self, List.self, Status.self, Watch.self, Approve.self, Decline.self, Cancel.self])

    /// How a courier reaches the device: discovery, or a given address where discovery cannot work.
    struct Courier: ParsableArguments {
        @OptionGroup var lan: LANOptions
        @Option(name: .customLong("device-address"), help: "HOST:PORT of the device's local API, when discovery finds nothing.")
        var deviceAddress: String?
        @Option(name: .customLong("presence-code"), help: """
            Instead of the LAN: the code the device's own page shows ("Forgot password?"); the service delivers over \
            the device's channel.
            """)
        var presenceCode: String?
        @Flag(help: """
            Instead of the LAN, the presence code, asked for here once the request is approved: the device's own page \
            ("Forgot password?") shows one only then.
            """)
        var presence = false

        /// A code given on the command line must be one the device already shows, which it does only for an approved
        /// request; otherwise nothing is sent, and `--presence` asks for it at the right moment.
        func checkPresenceCode(for request: API.PasswordReset) throws {
            guard presenceCode != nil, request.status != .approved else { return }
            throw CLIError("""
                \(request.deviceSerial) shows a presence code only once the request is approved, so that code cannot be its own. \
                Nothing was sent: run again with --presence instead of --presence-code, and type the code when asked.
                """)
        }

        /// Carries the approved request to the device and reports what happened.
        func carry(_ request: API.PasswordReset, with client: LatchkeyClient) async throws -> API.PasswordReset {
            if let presenceCode = try presenceCode ?? (presence ? Self.askPresenceCode(request) : nil) {
                say("Delivering with the presence code over \(request.deviceSerial)'s channel…")
                return try await attempt { try await client.deliverWithPresenceCode(request.id, code: presenceCode) }
            }
            say("On the device's LAN: asking \(request.deviceSerial) for a proximity proof…")
            let courier = ResetCourier(client: client, discovery: lan.discovery)
            return try await attempt { try await courier.carry(request, deviceAddress: deviceAddress) }
        }

        private static func askPresenceCode(_ request: API.PasswordReset) throws -> String {
            FileHandle.standardError.write(Data("""
                On \(request.deviceSerial)'s own page (its LAN address, "Forgot password?"), the presence code for this request \
                is shown now, valid 2 minutes. Type the presence code: 
                """.utf8))
            guard let code = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !code.isEmpty else {
                throw CLIError("""
                    No presence code given. The request stays approved: run `latchkey reset approve \(request.id) --presence` again.
                    """)
            }
            return code
        }
    }

    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask the site owner to reset a device's password (installers).")
        @OptionGroup var options: ClientOptions
        @Option(help: "The device's serial number.") var device: String
        @Option(help: """
            on-site (5 minutes, you carry it) or off-site (24 hours, the owner carries it); owners: owner, their own \
            reset (1 hour, they approve and carry it).
            """)
        var mode: String
        @Flag(help: "Do not ask for confirmation.") var yes = false

        func run() async throws {
            guard let mode = ResetMode(rawValue: mode.replacingOccurrences(of: "-", with: "_")) else {
                throw ValidationError("--mode must be on-site, off-site or owner.")
            }
            let window = switch mode {
            case .onSite: "5 minutes"
            case .offSite: "24 hours"
            case .owner: "1 hour"
            }
            if !yes && mode == .owner {
                guard confirm("Reset the admin password of your device \(device)? You approve and carry it yourself, within \(window).")
                else { throw CLIError("Nothing was sent.") }
            } else if !yes {
                guard confirm("Reset the admin password of \(device)? The owner must approve it.") else { throw CLIError("Nothing was sent.") }
                guard confirm("Send an \(mode == .onSite ? "on-site" : "off-site") request, valid \(window)?") else { throw CLIError("Nothing was sent.") }
            }
            let client = try options.client()
            let request = try await attempt { try await client.requestReset(serial: device, mode: mode) }
            let ask = mode == .owner ? "" : " Ask the site owner (\(request.ownerEmailMasked)) to reset the password in the app."
            let next = switch mode {
            case .onSite: "\nNext: latchkey reset watch \(request.id)"
            case .offSite: ""
            case .owner: "\nNext, on the device's LAN: latchkey reset approve \(request.id)"
            }
            try options.show(request, """
                The request was sent (valid for \(window)).\(ask)
                \(request.reminder ?? "")
                request: \(request.id)
                expires: \(request.expiresAt.formatted(.iso8601))
                """ + next)
        }
    }

    /// The portal's *My requests* (installers) or the requests on the owner's devices, newest first.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The reset requests you made, or those on your devices (owners).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only requests with this status: \(ResetStatus.allowedValues).") var status: String?

        func run() async throws {
            let status = try self.status.map { text in
                guard let status = ResetStatus(rawValue: text) else {
                    throw ValidationError("--status must be one of \(ResetStatus.allowedValues).")
                }
                return status
            }
            let client = try options.client()
            let requests = try await attempt { try await client.resets(status: status) }.sorted { $0.createdAt > $1.createdAt }
            try options.show(requests, requests.isEmpty ? "No requests\(status.map { " \($0.rawValue)" } ?? "")." : table(
                ["REQUEST", "DEVICE", "MODE", "STATUS", "ASKED", "EXPIRES"],
                requests.map {
                    [$0.id.uuidString, $0.deviceSerial, $0.mode.rawValue, $0.status.rawValue, $0.createdAt.formatted(.iso8601),
                     $0.status.isOpen ? $0.expiresAt.formatted(.iso8601) : "—"]
                }))
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Where a reset request stands.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The request's id.") var id: UUID

        func run() async throws {
            let client = try options.client()
            let request = try await attempt { try await client.reset(id) }
            let left = Int(request.expiresAt.timeIntervalSinceNow)
            try options.show(request, "\(request.deviceSerial)  \(request.mode.rawValue)  \(request.status.rawValue)"
                + (request.status.isOpen ? "  \(TimeText.countdown(left)) left" : ""))
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a request with a live countdown; for an on-site request, finish the reset once the owner approves.")
        @OptionGroup var options: ClientOptions
        @OptionGroup var courier: Courier

        @Argument(help: "The request's id.") var id: UUID

        func run() async throws {
            let client = try options.client()
            let me = try? Credentials.load()
            let interactive = isatty(STDOUT_FILENO) == 1
            var lastStatus: ResetStatus?
            while true {
                let request = try await attempt { try await client.reset(id) }
                if request.status != lastStatus {
                    if interactive { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
                    say("\(request.status.rawValue)")
                    lastStatus = request.status
                }
                switch request.status {
                case .completed:
                    return say("password reset successfully")
                case .declined: throw CLIError("The owner declined the request.")
                case .cancelled: throw CLIError("The request was cancelled.")
                case .expired: throw CLIError("The request expired before it was completed.")
                case .approved where request.mode == .onSite && request.installerId == me?.accountId:
                    let done = try await courier.carry(request, with: client)
                    if done.status == .completed { return say("password reset successfully") }
                case .pending, .approved:
                    if interactive {
                        let left = TimeText.countdown(Int(request.expiresAt.timeIntervalSinceNow))
                        FileHandle.standardOutput.write(Data("\r\u{1B}[K\(request.status.rawValue) · \(left) left".utf8))
                    }
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the new password and approve (owners). For an off-site request this computer must be on the device's LAN.")
        @OptionGroup var options: ClientOptions
        @OptionGroup var courier: Courier
        @Argument(help: "The request's id.") var id: UUID
        @Flag(name: .customLong("new-password-stdin"), help: "Read the new password from standard input.") var newPasswordStdin = false

        func run() async throws {
            let client = try options.client()
            var request = try await attempt { try await client.reset(id) }
            try courier.checkPresenceCode(for: request)
            if request.status != .approved {
                let password = try readSecret(prompt: "New device password: ", fromStdin: newPasswordStdin, confirm: true)
                // The SDK checks the policy before anything leaves this computer, then seals and approves.
                request = try await attempt { try await client.approveReset(id, newPassword: password) }
                guard request.mode != .onSite else {
                    return try options.show(request, "Approved. The installer completes the reset on site.")
                }
            } else if request.mode == .onSite {
                throw CLIError("Already approved: the installer completes the reset on site.")
            }
            // Off-site the owner is the courier; an approval whose LAN part did not happen (say, away from the
            // device) is carried now, without asking for the password again.
            let done = try await courier.carry(request, with: client)
            try options.show(done, done.status == .completed ? "password reset successfully" : "Status \(done.status.rawValue).")
        }
    }

    struct Decline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a reset request (owners).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The request's id.") var id: UUID

        func run() async throws {
            let client = try options.client()
            let request = try await attempt { try await client.declineReset(id) }
            try options.show(request, "Declined.")
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw your reset request (installers).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The request's id.") var id: UUID

        func run() async throws {
            let client = try options.client()
            let request = try await attempt { try await client.cancelReset(id) }
            try options.show(request, "Cancelled.")
        }
    }
}
