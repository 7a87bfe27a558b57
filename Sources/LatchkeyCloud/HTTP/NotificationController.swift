import Foundation
import Hummingbird
import LatchkeyProtocol
import ServiceLifecycle

/// The inbox, and its live stream as server-sent events.
struct NotificationController {
    let inbox: InboxService
    let hub: NotificationHub
    /// A comment line this often keeps proxies from closing an idle stream.
    let keepAliveInterval: Duration
    let streamsPerAccount: OpenConnectionQuota
    let streamsPerAddress: OpenConnectionQuota

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("notifications", use: list)
        group.post("notifications/:id/read", use: markRead)
        group.get("notifications/stream", use: stream)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> PagedResponse<API.Notification> {
        let category = try request.uri.queryParameters.get("category").map { text in
            guard let category = NotificationCategory(rawValue: text) else {
                throw LatchkeyError.invalidRequest("category must be one of \(NotificationCategory.allowedValues).")
            }
            return category
        }
        return PagedResponse(try await inbox.list(for: try context.requireAccount(), category: category, page: PageRequest(request))
            .map(API.Notification.init))
    }

    @Sendable func markRead(_ request: Request, context: AppRequestContext) async throws -> API.Notification {
        API.Notification(try await inbox.markRead(id: try context.uuid("id", of: "notification"), by: try context.requireAccount()))
    }

    /// `event: notification` with the notification's JSON as `data`, one per new notification.
    @Sendable func stream(_ request: Request, context: AppRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        guard let token = context.bearerToken ?? context.portalVisit?.sessionToken else {
            throw LatchkeyError.unauthenticated("Sign in first.")
        }
        let address = context.clientAddress ?? "unknown"
        guard await streamsPerAccount.take(account.id.uuidString) else {
            throw LatchkeyError.rateLimited(retryAfter: 60)
        }
        guard await streamsPerAddress.take(address) else {
            await streamsPerAccount.give(account.id.uuidString)
            throw LatchkeyError.rateLimited(retryAfter: 60)
        }
        let notifications = await hub.subscribe(accountId: account.id, session: SessionToken.hash(token))
        let latency = hub.deliveryLatency
        let keepAliveInterval = keepAliveInterval
        let (perAccount, perAddress) = (streamsPerAccount, streamsPerAddress)
        let connectionClosed = context.connection.closeFuture
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let (events, continuation) = AsyncStream.makeStream(of: StreamEvent.self)
            connectionClosed.whenComplete { _ in continuation.finish() }
            let forward = Task {
                for await notification in notifications { continuation.yield(.notification(notification)) }
                continuation.finish()
            }
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: keepAliveInterval)
                    continuation.yield(.keepAlive)
                }
            }
            defer {
                forward.cancel()
                ticker.cancel()
                Task {
                    await perAccount.give(account.id.uuidString)
                    await perAddress.give(address)
                }
            }
            let encoder = WireCoding.makeEncoder()
            try await writer.write(ByteBuffer(string: ": connected\n\n"))
            // A server shutting down waits for open connections: end the stream so that it need not wait.
            try await withGracefulShutdownHandler {
                for await event in events {
                    switch event {
                    case .keepAlive:
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    case .notification(let published):
                        let notification = published.notification
                        let json = String(decoding: try encoder.encode(API.Notification(notification)), as: UTF8.self)
                        try await writer.write(ByteBuffer(string: "event: notification\nid: \(notification.id)\ndata: \(json)\n\n"))
                        latency.record(publishedAt: published.publishedAt)
                    }
                }
            } onGracefulShutdown: {
                continuation.finish()
            }
            try await writer.finish(nil)
        })
    }

    private enum StreamEvent: Sendable {
        case notification(NotificationHub.Published)
        case keepAlive
    }
}
