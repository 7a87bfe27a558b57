import ArgumentParser
import AsyncHTTPClient
import Foundation
import LatchkeyClient
import LatchkeyProtocol

/// Options every client command takes.
struct ClientOptions: ParsableArguments {
    @Option(help: "The Latchkey service (default: the one you logged in to, else http://127.0.0.1:8080).") var server: String?
    @Flag(help: "Print JSON for scripts instead of text for people.") var json = false
    @Option(name: .customLong("ca-file"),
            help: "PEM of the CA that signed the service's TLS certificate (else LATCHKEY_CA_FILE, else $LATCHKEY_HOME/ca.pem, else the system's CAs).")
    var caFile: String?
    @Option(name: .customLong("manufacturer-roots"), help: """
        PEM of the manufacturer roots that certify devices' keys (else LATCHKEY_MANUFACTURER_ROOTS, \
        else $LATCHKEY_HOME/manufacturer-roots.pem).
        """)
    var manufacturerRoots: String?

    /// The client for the chosen service, signed in when the saved sign-in is for that service.
    func client(requireSignIn: Bool = true) throws -> LatchkeyClient {
        let saved = try? Credentials.load()
        let server = LatchkeyClient.serviceURL(self.server ?? saved?.server ?? "http://127.0.0.1:8080")
        let token = saved.map { LatchkeyClient.serviceURL($0.server) } == server ? saved?.token : nil
        if requireSignIn && token == nil { throw CLIError(ClientError.notSignedIn.description) }
        let caFile = Self.trustFile(flag: self.caFile, environment: "LATCHKEY_CA_FILE", inHome: "ca.pem")
        let httpClient: HTTPClient
        do { httpClient = try ClientTLS.httpClient(caFile: caFile) } catch {
            throw CLIError("--ca-file \(caFile ?? ""): not a PEM certificate file (\(error)).")
        }
        return LatchkeyClient(server: server, token: token, manufacturerRoots: try roots(), httpClient: httpClient)
    }

    /// The manufacturer roots from the flag, the environment, or the file in the CLI's home; nil when none is set.
    func roots() throws -> ManufacturerRoots? {
        guard let path = Self.trustFile(flag: manufacturerRoots, environment: "LATCHKEY_MANUFACTURER_ROOTS",
                                        inHome: "manufacturer-roots.pem")
        else { return nil }
        do { return try ManufacturerRoots(path: path) } catch {
            throw CLIError("manufacturer roots \(path): \(error)")
        }
    }

    /// A file the app trusts: the flag's, else the environment's, else the one in `$LATCHKEY_HOME` if it is there.
    static func trustFile(flag: String?, environment name: String, inHome file: String) -> String? {
        if let flag { return flag }
        if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty { return value }
        let inHome = Credentials.directory.appendingPathComponent(file).path
        return FileManager.default.fileExists(atPath: inHome) ? inHome : nil
    }

    /// Prints `value` as JSON with `--json`, else the text.
    func show(_ value: some Encodable, _ text: @autoclosure () -> String) throws {
        if json {
            let encoder = WireCoding.makeEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            say(String(decoding: try encoder.encode(value), as: UTF8.self))
        } else {
            say(text())
        }
    }
}

/// A failure the CLI reports in one line and a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs client calls, turning their typed errors into the one-line message the CLI prints.
func attempt<T>(_ work: () async throws -> T) async throws -> T {
    do {
        return try await work()
    } catch let error as ClientError {
        throw CLIError(error.description)
    }
}

extension UUID: @retroactive ExpressibleByArgument {
    public init?(argument: String) {
        self.init(uuidString: argument)
    }
}

/// Where the CLI keeps its sign-in: `$LATCHKEY_HOME/credentials.json` (default `~/.latchkey`), readable by you only.
struct Credentials: Codable {
    var server: String
    var token: String
    var email: String
    var role: AccountRole
    var accountId: UUID

    static var directory: URL {
        if let home = ProcessInfo.processInfo.environment["LATCHKEY_HOME"], !home.isEmpty { return URL(fileURLWithPath: home) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".latchkey")
    }

    static func load() throws -> Credentials {
        try WireCoding.makeDecoder().decode(Credentials.self, from: Data(contentsOf: directory.appendingPathComponent("credentials.json")))
    }

    func save() throws {
        try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
        let file = Self.directory.appendingPathComponent("credentials.json")
        try WireCoding.makeEncoder().encode(self).write(to: file, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }

    static func remove() {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("credentials.json"))
    }
}

/// Reads a secret: the first line of standard input with `fromStdin`, else a hidden prompt (twice when `confirm`).
func readSecret(prompt: String, fromStdin: Bool, confirm: Bool = false) throws -> String {
    if fromStdin {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError("Expected the password on standard input.") }
        return line
    }
    func hidden(_ prompt: String) throws -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        var settings = termios()
        let isTerminal = tcgetattr(STDIN_FILENO, &settings) == 0
        var quiet = settings
        if isTerminal {
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        }
        defer {
            if isTerminal {
                tcsetattr(STDIN_FILENO, TCSANOW, &settings)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError("No password given.") }
        return line
    }
    let first = try hidden(prompt)
    if confirm, try hidden("Again: ") != first { throw CLIError("The two passwords differ; nothing was sent.") }
    return first
}

/// Asks a yes/no question on standard input; anything but y/yes is no.
func confirm(_ question: String) -> Bool {
    FileHandle.standardError.write(Data("\(question) [y/N] ".utf8))
    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
    return answer == "y" || answer == "yes"
}

/// A table with aligned columns, for people.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    return ([header] + rows).map { row in
        row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}
