import ArgumentParser
import Foundation
import LatchkeyClient
import LatchkeyCloud
import LatchkeyProtocol
import Logging

/// `latchkey audit`: a device's or a site's history for its owner, to read or to export; `latchkey audit export`:
/// the whole log, for the operator, from the database.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "History: a device's or a site's (owners), or the whole log from the database (operators: audit export).",
        subcommands: [Show.self, Export.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "A device's history under your binding, or a site's (owners).")
        @OptionGroup var options: ClientOptions
        @Option(help: "The device's serial number.") var device: String?
        @Option(help: "The site's id.") var site: UUID?
        @Option(help: "text (default), csv or json.") var format: String = "text"

        func run() async throws {
            guard (device == nil) != (site == nil) else { throw ValidationError("Give --device or --site, one of them.") }
            guard ["text", "csv", "json"].contains(format) else { throw ValidationError("--format must be text, csv or json.") }
            let client = try options.client()
            let entries = try await attempt {
                if let device { try await client.audit(device: device) } else { try await client.audit(site: site!) }
            }
            switch format {
            case "csv":
                // Data for a file, as the server would send it: written as is.
                FileHandle.standardOutput.write(Data(AuditCSV.document(entries).utf8))
            case "json":
                let encoder = WireCoding.makeEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                say(String(decoding: try encoder.encode(entries), as: UTF8.self))
            default:
                try options.show(entries, entries.isEmpty ? "No history yet." : table(
                    ["AT", "WHO", "ACTION", "OUTCOME", "DEVICE", "REQUEST"],
                    entries.map {
                        [$0.at.formatted(.iso8601), $0.actorName ?? "—", $0.action, $0.outcome, $0.deviceSerial ?? "",
                         $0.requestId?.uuidString ?? ""]
                    }))
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every line of the audit log, oldest first, read from the database (operators).",
            discussion: "Reads the SQLite file under --data-dir, or the PostgreSQL database of --database-url / DATABASE_URL.")
        @Option(name: .customLong("data-dir"), help: "The service's data folder (default ./.latchkey).") var dataDir: String?
        @Option(name: .customLong("database-url"), help: "postgres://user:password@host:port/database") var databaseURL: String?
        @Option(help: "jsonl (one JSON object a line, default) or csv.") var format: String = "jsonl"

        func run() async throws {
            guard let format = AuditArchive.Format(rawValue: format) else {
                throw ValidationError("--format must be \(AuditArchive.Format.allCases.map(\.rawValue).joined(separator: " or ")).")
            }
            let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
            let location: DatabaseLocation
            if let url {
                location = .postgres(url: url)
            } else {
                let file = URL(fileURLWithPath: dataDir ?? ".latchkey").appendingPathComponent("latchkey.sqlite").path
                guard FileManager.default.fileExists(atPath: file) else {
                    throw CLIError("No database at \(file): give --data-dir of the service, or --database-url.")
                }
                location = .sqliteFile(path: file)
            }
            let count = try await AuditArchive.export(from: location, as: format, logger: Logger(label: "latchkey-audit")) { text in
                FileHandle.standardOutput.write(Data(text.utf8))
            }
            FileHandle.standardError.write(Data("\(count) audit lines exported.\n".utf8))
        }
    }
}
