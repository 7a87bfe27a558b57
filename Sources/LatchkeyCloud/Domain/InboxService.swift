import Foundation
import LatchkeyProtocol

/// An account's notifications: listing by tab and marking read.
public struct InboxService: Sendable {
    let store: any LatchkeyStore

    public init(store: any LatchkeyStore) {
        self.store = store
    }

    public func list(for account: Account, category: NotificationCategory?, page: PageRequest = PageRequest()) async throws -> Page<AccountNotification> {
        try await store.read { try await $0.notifications.list(accountId: account.id, category: category, page: page) }
    }

    /// What each notice's request is about (device and site), for those the account may still see: a bar owner with
    /// three cameras must tell them apart.
    public func subjects(of notices: [AccountNotification], for account: Account, at now: Date) async throws -> [UUID: RequestSubject] {
        let ids = Array(Set(notices.compactMap(\.requestId)))
        return try await store.read { try await $0.resetRequests.subjects(ids: ids, visibleTo: account.id, at: now) }
    }

    /// One notification of the account's, as it is: reading it changes nothing.
    public func notice(id: UUID, of account: Account) async throws -> AccountNotification {
        guard let notification = try await store.read({ try await $0.notifications.find(id: id) }), notification.accountId == account.id else {
            throw LatchkeyError.notFound("No notification with id \(id) in your inbox.")
        }
        return notification
    }

    public func markRead(id: UUID, by account: Account) async throws -> AccountNotification {
        try await store.transaction { session in
            guard var notification = try await session.notifications.find(id: id), notification.accountId == account.id else {
                throw LatchkeyError.notFound("No notification with id \(id) in your inbox.")
            }
            if !notification.read {
                try await session.notifications.markRead(id: id)
                notification.read = true
            }
            return notification
        }
    }
}

/// The device and site a request is about, as the inbox names it.
public struct RequestSubject: Sendable, Equatable {
    public var deviceSerial: String
    public var siteName: String
}
