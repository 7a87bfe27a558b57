import FluentKit
import Foundation
import LatchkeyProtocol
import PostgresNIO
import SQLKit

/// The store on FluentKit: SQLite or PostgreSQL, whichever `Databases` was opened with.
///
/// On PostgreSQL every transaction is SERIALIZABLE and retried when the database reports a conflict, so that two
/// nodes changing the same request or device at once cannot lose one of the changes. SQLite has one connection and
/// runs transactions one after another anyway.
struct FluentStore: LatchkeyStore {
    let database: any Database
    static let attempts = 5

    func transaction<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        let serializable = (database as? any SQLDatabase)?.dialect.name == "postgresql"
        var attempt = 1
        while true {
            do {
                return try await database.transaction { database in
                    if serializable, let sql = database as? any SQLDatabase {
                        try await sql.raw("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").run()
                    }
                    return try await work(FluentSession(database: database))
                }
            } catch let error as PSQLError where attempt < Self.attempts && Self.isConflict(error) {
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...10) * attempt))
                attempt += 1
            }
        }
    }

    /// serialization_failure and deadlock_detected: the transaction did nothing and may simply run again.
    private static func isConflict(_ error: PSQLError) -> Bool {
        ["40001", "40P01"].contains(error.serverInfo?[.sqlState] ?? "")
    }

    func read<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        try await work(FluentSession(database: database))
    }
}

struct FluentSession: StoreSession {
    let database: any Database

    var accounts: any AccountRepository { FluentAccountRepository(database: database) }
    var sites: any SiteRepository { FluentSiteRepository(database: database) }
    var devices: any DeviceRepository { FluentDeviceRepository(database: database) }
    var resetRequests: any ResetRequestRepository { FluentResetRequestRepository(database: database) }
    var notifications: any NotificationRepository { FluentNotificationRepository(database: database) }
    var audit: any AuditLog { FluentAuditLog(database: database) }
}

/// Runs a write and turns a unique-constraint failure into the domain's own refusal.
func insertChecked(_ conflict: LatchkeyError, _ write: () async throws -> Void) async throws {
    do {
        try await write()
    } catch let error as any DatabaseError where error.isConstraintFailure {
        throw conflict
    }
}

/// Reads a stored enum value, failing loudly if the database holds something this version does not know.
func decodeStored<E: WireEnum>(_ type: E.Type, _ raw: String) throws -> E {
    guard let value = E(rawValue: raw) else {
        throw LatchkeyError.invalidRequest("The database holds an unknown \(E.self) '\(raw)'.")
    }
    return value
}
