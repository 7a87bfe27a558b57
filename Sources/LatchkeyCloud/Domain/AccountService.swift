import Foundation
import LatchkeyProtocol

/// Sign-up, sign-in with bearer tokens, and telling who a token belongs to.
public struct AccountService: Sendable {
    let store: any LatchkeyStore
    let hasher: any PasswordHasher
    let clock: LatchkeyClock
    let sessionLifetime: TimeInterval
    let limiter: RateLimiter
    /// Told when a session ends, so the live streams opened with it end too.
    let streams: (any NotificationPublisher)?
    let sessions: SessionCache

    public init(store: any LatchkeyStore, hasher: any PasswordHasher, clock: LatchkeyClock, sessionLifetime: TimeInterval,
                limiter: RateLimiter, streams: (any NotificationPublisher)? = nil, sessions: SessionCache = SessionCache()) {
        self.sessions = sessions
        self.limiter = limiter
        self.streams = streams
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.sessionLifetime = sessionLifetime
    }

    /// `address`: where the call came from, for the limits (`nil` when unknown, counted together).
    public func signUp(_ form: API.SignUp, from address: String? = nil) async throws -> Account {
        try await limiter.attempt(.signUpPerAddress, key: address ?? "unknown")
        let email = try AccountRules.normalizedEmail(form.email)
        let name = try AccountRules.checkedName(form.name)
        try AccountRules.checkPassword(form.password, email: email, name: name)
        let passwordHash = try await hasher.hash(form.password)
        let account = Account(
            id: UUID(), email: email, name: name, role: form.role, language: form.language ?? .en, passwordHash: passwordHash,
            createdAt: clock.now()
        )
        try await store.transaction { session in
            try await session.accounts.insert(account)
            try await session.audit.append(
                AuditEntry(at: account.createdAt, actorId: account.id, siteId: nil, deviceSerial: nil, requestId: nil,
                           action: .accountCreated, outcome: account.role.rawValue)
            )
        }
        return account
    }

    /// A new bearer token for a correct e-mail and password.
    /// `language`: the portal's language at sign-in, which the account's e-mails follow from then on.
    public func signIn(email: String, password: String, from address: String? = nil, language: Language? = nil) async throws
        -> (token: String, session: SessionToken, account: Account)
    {
        // Counted before any password is hashed: a flood costs the server a counter, not a bcrypt each.
        let source = address ?? "unknown"
        try await limiter.attempt(.signInPerAddress, key: source)
        try await limiter.attempt(.signInPerAccountAndAddress, key: "\(email.lowercased().prefix(254))|\(source)")
        let wrong = LatchkeyError.unauthenticated("The e-mail or the password is wrong.")
        guard let email = try? AccountRules.normalizedEmail(email),
            var account = try await store.read({ try await $0.accounts.find(email: email) })
        else {
            // Spend the same time as a real check, so the answer's delay does not tell which e-mails exist.
            await hasher.verifyDecoy(password)
            throw wrong
        }
        guard try await hasher.verify(password, against: account.passwordHash) else { throw wrong }
        let (token, stored) = SessionToken.issue(for: account.id, at: clock.now(), lifetime: sessionLifetime)
        let changedLanguage = language.flatMap { $0 == account.language ? nil : $0 }
        if let changedLanguage { account.language = changedLanguage }
        try await store.transaction { [id = account.id] session in
            try await session.accounts.insert(stored)
            if let changedLanguage { try await session.accounts.setLanguage(changedLanguage, accountId: id) }
        }
        return (token, stored, account)
    }

    /// The account behind a bearer token, or `unauthenticated`.
    public func authenticate(token: String) async throws -> Account {
        let hash = SessionToken.hash(token)
        let now = clock.now()
        if let account = sessions.account(forTokenHash: hash, at: now) { return account }
        let found = try await store.read { session -> (Account, Date)? in
            guard let stored = try await session.accounts.findToken(hash: hash), now < stored.expiresAt,
                let account = try await session.accounts.find(id: stored.accountId)
            else { return nil }
            return (account, stored.expiresAt)
        }
        guard let (account, expiresAt) = found else {
            throw LatchkeyError.unauthenticated("The token is missing, wrong or expired: sign in again.")
        }
        sessions.remember(account, tokenHash: hash, sessionExpiresAt: expiresAt)
        return account
    }

    /// Deletes the sessions that have expired: a stolen old token is nothing, and the table does not grow forever.
    public func purgeExpiredSessions() async throws {
        let now = clock.now()
        try await store.transaction { try await $0.accounts.deleteTokens(expiredBefore: now) }
    }

    public func signOut(token: String) async throws {
        let hash = SessionToken.hash(token)
        try await store.transaction { try await $0.accounts.deleteToken(hash: hash) }
        sessions.forget(tokenHash: hash)
        await streams?.sessionEnded(hash)
    }
}
