import ArgumentParser
import Foundation
import LatchkeyClient
import LatchkeyProtocol

struct SignUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "signup", abstract: "Create an owner or installer account.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Your e-mail address.") var email: String
    @Option(help: "Your name, as others see it.") var name: String
    @Option(help: "owner or installer.") var role: String
    @Option(help: "en or it: the language of your e-mails (default: from $LANG).") var language: String?
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false

    func run() async throws {
        guard let role = AccountRole(rawValue: role) else { throw ValidationError("--role must be owner or installer.") }
        let chosen = language.map(Language.init(rawValue:)) ?? Language.negotiate(ProcessInfo.processInfo.environment["LANG"])
        guard let chosen else { throw ValidationError("--language must be \(Language.allowedValues).") }
        let password = try readSecret(prompt: "Password: ", fromStdin: passwordStdin, confirm: true)
        let form = API.SignUp(email: email, password: password, name: name, role: role, language: chosen)
        let account = try await attempt { try await options.client(requireSignIn: false).signUp(form) }
        try options.show(account, "Account created for \(account.email) (\(account.role.rawValue)). Now: latchkey login --email \(account.email)")
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign in; the token is kept in $LATCHKEY_HOME (default ~/.latchkey).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Your e-mail address.") var email: String
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false

    func run() async throws {
        let password = try readSecret(prompt: "Password: ", fromStdin: passwordStdin)
        let client = try options.client(requireSignIn: false)
        let session = try await attempt { try await client.signIn(email: email, password: password) }
        try Credentials(server: client.server, token: session.token, email: session.account.email, role: session.account.role,
                        accountId: session.account.id).save()
        try options.show(session.account, "Signed in to \(client.server) as \(session.account.name) (\(session.account.role.rawValue)).")
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign out and forget the token.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        if let client = try? options.client() { try? await client.signOut() }
        Credentials.remove()
        say("Signed out.")
    }
}

struct Sites: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List your sites (owners: --create NAME makes one).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Create a site with this name (owners).") var create: String?
    @Option(help: "The new site's address.") var address: String?

    func run() async throws {
        let client = try options.client()
        if let create {
            let site = try await attempt { try await client.createSite(name: create, address: address) }
            return try options.show(site, "Created site \(site.name): \(site.id)")
        }
        let sites = try await attempt { try await client.sites() }
        try options.show(sites, sites.isEmpty ? "No sites yet." : table(["ID", "NAME", "ADDRESS"], sites.map { [$0.id.uuidString, $0.name, $0.address ?? ""] }))
    }
}

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a site's devices with their status and compatibility.")
    @OptionGroup var options: ClientOptions
    @Option(help: "The site's id.") var site: UUID

    func run() async throws {
        let client = try options.client()
        let devices = try await attempt { try await client.devices(site: site) }
        try options.show(devices, devices.isEmpty ? "No devices on this site." : table(
            ["SERIAL", "MODEL", "TYPE", "FIRMWARE", "STATUS", "RESET"],
            devices.map { [$0.serial, $0.model, $0.deviceType.rawValue, $0.firmware, $0.online ? "online" : "offline",
                           $0.compatible ? "supported" : "firmware too old or model not listed"] }))
    }
}

struct Compat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The compatibility list: models and the firmware they need.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Part of a model name to search for.") var model: String?

    func run() async throws {
        let entries = try await attempt { try await options.client(requireSignIn: false).compatibility(model: model) }
        try options.show(entries, entries.isEmpty ? "No model matches." : table(
            ["MODEL", "TYPE", "MINIMUM FIRMWARE"], entries.map { [$0.model, $0.deviceType.rawValue, $0.minFirmware] }))
    }
}

struct Discover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The devices that answer SADP discovery on this LAN.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var lan: LANOptions

    func run() async throws {
        let found = try await lan.discovery.discover()
        struct Row: Encodable { let serial, model, firmware, address: String; let activated, passwordResetAbility: Bool }
        let rows = found.map { Row(serial: $0.serial, model: $0.model, firmware: $0.firmware, address: $0.address,
                                   activated: $0.activated, passwordResetAbility: $0.passwordResetAbility) }
        try options.show(rows, found.isEmpty
            ? "Nothing answered on this LAN. VLANs, client isolation and IGMP snooping can block discovery: then give --device-address HOST:PORT to the reset commands."
            : table(["SERIAL", "MODEL", "FIRMWARE", "ADDRESS", "ACTIVATED", "RESET"],
                    found.map { [$0.serial, $0.model, $0.firmware, $0.address, $0.activated ? "yes" : "no", $0.passwordResetAbility ? "yes" : "no"] }))
    }
}

/// How to find devices on the LAN.
struct LANOptions: ParsableArguments {
    @Option(name: .customLong("discovery-port"), help: "UDP port of SADP discovery.") var discoveryPort: Int = SADP.port
    @Option(name: .customLong("probe"), help: "Also ask this address directly (repeatable), e.g. a device on loopback.")
    var probes: [String] = []

    var discovery: LANDiscovery { LANDiscovery(port: discoveryPort, extraTargets: probes) }
}
