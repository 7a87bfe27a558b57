import FluentKit
import Foundation
import LatchkeyProtocol
import SQLKit

/// The mail queue in plain SQL, the same on SQLite and PostgreSQL: claiming is one `UPDATE … RETURNING` whose
/// conditions are checked again on each row it takes, so two nodes never claim the same mail.
struct SQLMailQueue: MailQueue {
    let database: any Database

    func enqueue(_ mail: QueuedMail) async throws {
        let content = String(decoding: try WireCoding.makeEncoder().encode(mail.mail), as: UTF8.self)
        let queued = Int64(mail.queuedAt.timeIntervalSince1970)
        try await database.sql.raw("""
            INSERT INTO mail_queue (id, recipient, language, content, status, attempts, queued_at, next_attempt_at, lease_until)
            VALUES (\(bind: mail.id.uuidString), \(bind: mail.recipient), \(bind: mail.language.rawValue), \(bind: content),
                    'pending', 0, \(bind: queued), \(bind: queued), 0)
            """).run()
    }

    func claimDue(at now: Date, leaseUntil: Date, limit: Int) async throws -> [QueuedMail] {
        let now = Int64(now.timeIntervalSince1970)
        let lease = Int64(leaseUntil.timeIntervalSince1970)
        let rows = try await database.sql.raw("""
            UPDATE mail_queue SET lease_until = \(bind: lease), attempts = attempts + 1
            WHERE status = 'pending' AND next_attempt_at <= \(bind: now) AND lease_until <= \(bind: now)
              AND id IN (SELECT id FROM mail_queue WHERE status = 'pending' AND next_attempt_at <= \(bind: now)
                         AND lease_until <= \(bind: now) ORDER BY next_attempt_at LIMIT \(bind: limit))
            RETURNING id, recipient, language, content, attempts, queued_at
            """).all()
        return try rows.map { row in
            let id = try row.decode(column: "id", as: String.self)
            let language = try row.decode(column: "language", as: String.self)
            guard let uuid = UUID(uuidString: id) else { throw StoredDataError(what: "mail id", value: id) }
            let mail = try WireCoding.makeDecoder().decode(ResetMail.self, from: Data(try row.decode(column: "content", as: String.self).utf8))
            return QueuedMail(
                id: uuid, recipient: try row.decode(column: "recipient", as: String.self),
                language: try decodeStored(Language.self, language), mail: mail,
                queuedAt: Date(timeIntervalSince1970: TimeInterval(try row.decode(column: "queued_at", as: Int64.self))),
                attempts: Int(try row.decode(column: "attempts", as: Int64.self)))
        }
    }

    func sent(id: UUID) async throws {
        try await database.sql.raw("DELETE FROM mail_queue WHERE id = \(bind: id.uuidString)").run()
    }

    func retry(id: UUID, at next: Date, error: String) async throws {
        try await database.sql.raw("""
            UPDATE mail_queue SET next_attempt_at = \(bind: Int64(next.timeIntervalSince1970)), lease_until = 0,
                last_error = \(bind: String(error.prefix(500)))
            WHERE id = \(bind: id.uuidString)
            """).run()
    }

    func giveUp(id: UUID, error: String) async throws {
        try await database.sql.raw("""
            UPDATE mail_queue SET status = 'failed', lease_until = 0, last_error = \(bind: String(error.prefix(500)))
            WHERE id = \(bind: id.uuidString)
            """).run()
    }

    func counts() async throws -> (waiting: Int, failed: Int) {
        let rows = try await database.sql.raw("SELECT status, COUNT(*) AS n FROM mail_queue GROUP BY status").all()
        var counts = (waiting: 0, failed: 0)
        for row in rows {
            let n = Int(try row.decode(column: "n", as: Int64.self))
            if try row.decode(column: "status", as: String.self) == "failed" { counts.failed = n } else { counts.waiting = n }
        }
        return counts
    }
}
