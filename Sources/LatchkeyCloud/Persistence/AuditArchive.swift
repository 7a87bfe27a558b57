import Foundation
import LatchkeyProtocol
import Logging

/// The operator's export of the whole audit log, read from the database itself (`latchkey audit export`): every line,
/// oldest first, in pages, as JSON Lines or CSV.
public enum AuditArchive {
    public enum Format: String, CaseIterable, Sendable {
        case jsonl, csv
    }

    /// Writes every line through `write`; answers how many.
    public static func export(from location: DatabaseLocation, as format: Format, logger: Logger,
                              write: (String) throws -> Void) async throws -> Int {
        var quiet = logger
        quiet.logLevel = .warning
        let service = try await DatabaseService(location: location, logger: quiet)
        let store = FluentStore(service)
        var count = 0
        do {
            if format == .csv { try write(AuditCSV.header) }
            let encoder = WireCoding.makeEncoder()
            var after = 0
            while true {
                let from = after
                let page = try await store.read { session in
                    try await SiteService.named(session.audit.entries(after: from, limit: 1_000), in: session)
                }
                guard let last = page.last?.entry.sequence else { break }
                let wire = AuditExport.wire(page)
                switch format {
                case .jsonl:
                    for entry in wire { try write(String(decoding: try encoder.encode(entry), as: UTF8.self) + "\n") }
                case .csv:
                    try write(AuditCSV.rows(wire))
                }
                count += page.count
                after = last
            }
        } catch {
            await service.close()
            throw error
        }
        await service.close()
        return count
    }
}
