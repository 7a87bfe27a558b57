import FluentKit
import Foundation
import LatchkeyProtocol

/// The store on FluentKit: SQLite or PostgreSQL, whichever `Databases` was opened with.
struct FluentStore: LatchkeyStore {
    let database: any Database

    func transaction<T: Sendable>(_ work: @escaping @Sendable (any StoreSession) async throws -> T) async throws -> T {
        try await database.transaction { database in
            try await work(FluentSession(database: database))
        }
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
