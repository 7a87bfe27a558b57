import FluentKit
import Foundation
import LatchkeyProtocol
import Logging
import PostgresKit
import PostgresNIO
import SQLKit
import ServiceLifecycle

/// Carries messages between the nodes that share one PostgreSQL (`NOTIFY`/`LISTEN`): new notifications, so a
/// listener on any node hears what any node wrote, and messages for a device whose channel another node holds, with
/// their answers. Each node handles its own messages directly and ignores their echo.
final class NodeRelay: Service, Sendable {
    static let channel = "latchkey_nodes"

    /// One message as it crosses between nodes.
    enum Message: Codable, Sendable {
        /// `publishedAt`: when the publishing node's transaction had committed, in seconds since 1970 (the wire's dates
        /// are whole seconds, too coarse to time a delivery); absent from nodes of earlier versions.
        case notification(accountId: UUID, notification: API.Notification, publishedAt: TimeInterval?)
        /// For the node holding `serial`'s channel; an answer goes back to `replyTo`.
        case toDevice(serial: String, message: DeviceChannelMessage, replyTo: UUID?)
        case fromDevice(to: UUID, message: DeviceChannelMessage)
        /// A session signed out: the streams other nodes hold for it end.
        case sessionEnded(session: String)
    }

    struct Envelope: Codable, Sendable {
        var node: UUID
        var message: Message
    }

    let node = UUID()
    let database: any Database
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    let deliver: @Sendable (Message) async -> Void

    init(url: String, database: any Database, logger: Logger, deliver: @escaping @Sendable (Message) async -> Void) throws {
        self.configuration = try SQLPostgresConfiguration(url: url).coreConfiguration
        self.database = database
        self.logger = logger
        self.deliver = deliver
    }

    /// Tells the other nodes; a notification a node misses is still in the inbox, a device message times out.
    /// All of `messages` go in one statement (a reset's step notifies two or three people): one round trip, not one
    /// each, and in one transaction, so the other nodes hear them in the order given.
    func send(_ messages: [Message]) async {
        guard let sql = database as? any SQLDatabase, !messages.isEmpty else { return }
        do {
            let payloads = try messages.map { message in
                String(decoding: try WireCoding.makeEncoder().encode(Envelope(node: node, message: message)), as: UTF8.self)
            }
            try await sql.raw("""
                SELECT pg_notify(\(bind: Self.channel), m.payload) FROM unnest(\(bind: payloads)::text[]) WITH ORDINALITY AS m(payload, n)
                ORDER BY m.n
                """).run()
        } catch {
            logger.warning("Could not relay messages to other nodes", metadata: ["error": "\(error)", "messages": "\(messages.count)"])
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
                logger.warning("Node relay lost its connection", metadata: ["error": "\(error)"])
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
                    guard let envelope = try? WireCoding.makeDecoder().decode(Envelope.self, from: Data(notification.payload.utf8)),
                        envelope.node != node
                    else { continue }
                    await deliver(envelope.message)
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }
}
