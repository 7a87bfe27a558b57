import FluentKit
import Foundation
import LatchkeyProtocol
import Logging
import PostgresKit
import PostgresNIO
import SQLKit
import ServiceLifecycle

/// Carries new notifications between the nodes that share one PostgreSQL, so a listener on any node hears what any
/// node wrote (`NOTIFY`/`LISTEN`). Each node delivers its own notifications directly and ignores their echo.
final class NotificationRelay: Service, Sendable {
    static let channel = "latchkey_notifications"

    /// One notification as it crosses between nodes.
    struct Message: Codable, Sendable {
        var node: UUID
        var accountId: UUID
        var notification: API.Notification
    }

    let node = UUID()
    let database: any Database
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    let deliver: @Sendable (AccountNotification) async -> Void

    init(url: String, database: any Database, logger: Logger, deliver: @escaping @Sendable (AccountNotification) async -> Void) throws {
        self.configuration = try SQLPostgresConfiguration(url: url).coreConfiguration
        self.database = database
        self.logger = logger
        self.deliver = deliver
    }

    /// Tells the other nodes; a node that misses it still has it in the inbox.
    func send(_ notifications: [AccountNotification]) async {
        guard let sql = database as? any SQLDatabase else { return }
        for notification in notifications {
            do {
                let message = Message(node: node, accountId: notification.accountId, notification: API.Notification(notification))
                let payload = String(decoding: try WireCoding.makeEncoder().encode(message), as: UTF8.self)
                try await sql.raw("SELECT pg_notify(\(bind: Self.channel), \(bind: payload))").run()
            } catch {
                logger.warning("Could not relay a notification to other nodes", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Listens on a connection of its own, reconnecting with backoff, until the service stops.
    func run() async throws {
        var backoff = Duration.milliseconds(100)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await self.listenOnce() }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.warning("Notification relay lost its connection", metadata: ["error": "\(error)"])
            }
            let wait = backoff
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            backoff = min(backoff * 2, .seconds(10))
        }
    }

    private func listenOnce() async throws {
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await connection.listen(on: Self.channel) { notifications in
                for try await notification in notifications {
                    guard let message = try? WireCoding.makeDecoder().decode(Message.self, from: Data(notification.payload.utf8)),
                        message.node != node
                    else { continue }
                    let wire = message.notification
                    await deliver(AccountNotification(
                        id: wire.id, accountId: message.accountId, category: wire.category, kind: wire.kind, title: wire.title,
                        body: wire.body, requestId: wire.requestId, createdAt: wire.createdAt, read: wire.read))
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }
}
