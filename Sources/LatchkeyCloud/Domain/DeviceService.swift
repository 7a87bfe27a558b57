import Crypto
import Foundation
import LatchkeyProtocol

/// Devices as the platform meets them: over their channel (connect, heartbeat, disconnect), attested by their
/// manufacturer's certificate chain, and as owners bind them to a site with the code on their label — which only the
/// device compares.
public struct DeviceService: Sendable {
    let store: any LatchkeyStore
    let clock: LatchkeyClock
    let resets: PasswordResetService
    let messenger: any DeviceMessenger
    let roots: ManufacturerRoots
    let limiter: RateLimiter
    /// This node: the channels it holds are online while it is heard from.
    let node: String
    private let closedChannels: ClosedChannels

    public init(store: any LatchkeyStore, clock: LatchkeyClock, resets: PasswordResetService, messenger: any DeviceMessenger,
                roots: ManufacturerRoots, limiter: RateLimiter, node: String = UUID().uuidString) {
        self.node = node
        closedChannels = ClosedChannels(store: store)
        self.limiter = limiter
        self.store = store
        self.clock = clock
        self.resets = resets
        self.messenger = messenger
        self.roots = roots
    }

    // MARK: - Channel

    /// A device opened its channel, presented its chain and signed the platform's challenge. Nothing is written for a
    /// device that is not attested. Returns whether it is bound.
    public func connect(_ hello: DeviceHello, challenge nonce: String, connectionId: UUID, from address: String? = nil) async throws
        -> Bool
    {
        let attested = try await attest(hello, challenge: nonce)
        let identity = DeviceIdentity(attested)
        let now = clock.now()
        let outcome = try await store.transaction { session -> Outcome<Bool> in
            var device = try await session.devices.find(serial: attested.serial)
                ?? Device(serial: attested.serial, model: attested.model, deviceType: hello.deviceType, firmware: hello.firmware,
                          siteId: nil, online: false)
            if device.keysPinned, let pinned = device.identity, !pinned.sameKeys(as: identity) {
                try await session.audit.append(
                    AuditEntry(at: now, actorId: nil, siteId: device.siteId, deviceSerial: device.serial, requestId: nil,
                               action: .deviceConnected, outcome: "refused: device_key_mismatch",
                               detail: "presented signing key \(identity.signingKey.prefix(16))…"))
                return Outcome(failure: .deviceKeyMismatch(serial: hello.serial))
            }
            device.identity = identity
            device.model = attested.model
            device.deviceType = hello.deviceType
            device.firmware = hello.firmware
            device.lanAddresses = hello.lanAddresses
            device.online = true
            device.lastSeenAt = now
            device.connectionId = connectionId
            device.channelAddress = address
            device.nodeId = self.node
            try await session.devices.save(device)
            try await session.audit.append(
                AuditEntry(at: now, actorId: nil, siteId: device.siteId, deviceSerial: device.serial, requestId: nil,
                           action: .deviceConnected, outcome: "ok", detail: "\(attested.model) \(hello.firmware)"))
            return Outcome(value: device.siteId != nil)
        }
        return try await outcome.settle(publishingWith: resets.publisher)
    }

    /// This node is alive, and so are the channels it holds (each closed channel is written offline as it closes, and a
    /// channel that stops answering pings is closed): one write per node and heartbeat, none per device.
    public func nodeHeartbeat() async throws {
        let now = clock.now()
        try await store.transaction { [node] in try await $0.devices.nodeHeard(node, at: now) }
    }

    /// The channel `connectionId` ended; the device goes offline unless a newer channel already replaced it.
    public func disconnect(serial: String, connectionId: UUID) async throws {
        try await closedChannels.writeOffline(serial: serial, connectionId: connectionId)
    }

    /// Marks offline every device whose channel has been silent past the limit, on whichever node it was.
    public func markSilentDevicesOffline() async throws {
        let cutoff = clock.now() - Device.silenceLimit
        try await store.transaction { try await $0.devices.markOffline(silentSince: cutoff) }
    }

    // MARK: - Binding

    /// The owner binds a connected device to a site with the code on its label. The device compares the code and
    /// signs its answer; wrong codes count against the account that typed them.
    public func bind(siteId: UUID, serial: String, verificationCode: String, by account: Account, from address: String? = nil)
        async throws -> Device
    {
        try await limiter.attempt(.bindingPerAddress, key: address ?? "unknown")
        let code = verificationCode.trimmingCharacters(in: .whitespaces).uppercased()
        guard VerificationCode.isWellFormed(code) else {
            throw LatchkeyError.invalidRequest("A verification code is the six letters on the device's label.")
        }
        let readAt = clock.now()
        let (site, signingKey) = try await store.read { session -> (Site, Curve25519.Signing.PublicKey) in
            let site = try await SiteService.ownedSite(id: siteId, by: account, in: session)
            let guardState = try await session.bindingGuards.find(accountId: account.id)
            if guardState.isLocked(at: readAt), let until = guardState.lockedUntil { throw LatchkeyError.locked(until: until) }
            guard serial.count <= 64, let device = try await session.devices.find(serial: serial) else {
                throw LatchkeyError.deviceOffline(serial: serial)
            }
            // A bound device is said to be bound whether or not it is connected right now: that is what blocks binding.
            guard device.siteId == nil else { throw LatchkeyError.deviceAlreadyBound(serial: serial) }
            guard device.isOnline(at: readAt), let key = device.identity?.signingPublicKey, device.identity?.certificateChain != nil
            else { throw LatchkeyError.deviceOffline(serial: serial) }
            return (site, key)
        }
        let check = CodeCheck(nonce: Base64URL.random(), kind: .label, accountId: account.id, subjectId: site.id, code: code)
        let answer = try await messenger.check(check, serial: serial)
        guard answer.isSigned(for: check, serial: serial, by: signingKey) else {
            throw LatchkeyError.deviceKeyMismatch(serial: serial)
        }
        let now = clock.now()
        let outcome = try await store.transaction { session -> Outcome<Device> in
            func refuse(_ failure: LatchkeyError) async throws -> Outcome<Device> {
                try await session.audit.append(
                    AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: serial, requestId: nil,
                               action: .deviceBound, outcome: "refused: \(failure.code.rawValue)"))
                return Outcome(failure: failure)
            }
            if let wait = answer.retryAfter { return try await refuse(.locked(until: now + TimeInterval(wait))) }
            guard answer.matches else {
                var guardState = try await session.bindingGuards.find(accountId: account.id)
                guardState.recordFailure(at: now)
                try await session.bindingGuards.save(guardState)
                if let until = guardState.lockedUntil, guardState.isLocked(at: now) { return try await refuse(.locked(until: until)) }
                return try await refuse(.verificationCodeMismatch(serial: serial, attemptsLeft: guardState.attemptsLeft))
            }
            // Read again under lock: the device may have been bound, or re-keyed, while it was asked.
            guard var device = try await session.devices.find(serial: serial), device.identity?.signingPublicKey?.rawRepresentation == signingKey.rawRepresentation
            else {
                return try await refuse(.deviceOffline(serial: serial))
            }
            guard device.siteId == nil else { return try await refuse(.deviceAlreadyBound(serial: serial)) }
            device.siteId = site.id
            device.keysPinned = true
            try await session.devices.save(device)
            try await session.bindingGuards.save(BindingGuard(accountId: account.id))
            try await session.audit.append(
                AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: serial, requestId: nil,
                           action: .deviceBound, outcome: "ok", detail: "code checked by the device; keys pinned"))
            return Outcome(value: device)
        }
        let device = try await outcome.settle(publishingWith: resets.publisher)
        await messenger.bindingChanged(serial: device.serial, siteId: device.siteId)
        return device
    }

    /// The owner releases a device: its open requests end, its keys are no longer pinned.
    public func unbind(siteId: UUID, serial: String, by account: Account) async throws {
        let now = clock.now()
        let notifications = try await store.transaction { session -> [AccountNotification] in
            let site = try await SiteService.ownedSite(id: siteId, by: account, in: session)
            guard var device = try await session.devices.find(serial: serial), device.siteId == site.id else {
                throw LatchkeyError.notFound("No device \(serial) on site '\(site.name)'.")
            }
            let notifications = try await resets.cancelOpenRequests(deviceSerial: serial, by: account, at: now, in: session)
            device.siteId = nil
            device.keysPinned = false
            try await session.devices.save(device)
            try await session.audit.append(
                AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: serial, requestId: nil,
                           action: .deviceUnbound, outcome: "ok"))
            return notifications
        }
        await resets.publisher.publish(notifications)
        await messenger.bindingChanged(serial: serial, siteId: nil)
    }

    /// The device's keys and status, for the owner and the installers authorized on its site.
    public func detail(serial: String, visibleTo account: Account) async throws -> Device {
        let now = clock.now()
        return try await store.read { session in
            guard let device = try await session.devices.find(serial: serial), let siteId = device.siteId,
                (try? await SiteService.visibleSite(id: siteId, to: account, at: now, in: session)) != nil
            else { throw LatchkeyError.notFound("No device with serial \(serial) on a site visible to you.") }
            return device
        }
    }

    /// The hello's chain verifies to a trusted root, names the serial said, and certifies the key that signed the
    /// challenge.
    func attest(_ hello: DeviceHello, challenge nonce: String) async throws(LatchkeyError) -> AttestedDevice {
        for (name, value) in [("serial", hello.serial), ("firmware", hello.firmware)] {
            guard !value.isEmpty, value.count <= 64 else { throw .invalidRequest("The device's \(name) must be 1–64 characters.") }
        }
        guard hello.lanAddresses.count <= 8, hello.lanAddresses.allSatisfy({ $0.count <= 64 }) else {
            throw .invalidRequest("A device reports at most 8 LAN addresses.")
        }
        let attested: AttestedDevice
        do {
            attested = try await roots.attest(chainPEM: hello.certificateChain, now: clock.now())
        } catch {
            throw .deviceNotAttested(serial: String(hello.serial.prefix(64)), reason: error.description)
        }
        guard attested.serial == hello.serial else {
            throw .deviceNotAttested(serial: String(hello.serial.prefix(64)), reason: "its certificate is for serial \(attested.serial)")
        }
        guard let signature = Base64URL.decode(hello.challengeSignature),
            attested.signingKey.isValidSignature(signature, for: ChannelProof.signedBytes(nonce: nonce, serial: hello.serial))
        else {
            throw .deviceNotAttested(serial: hello.serial, reason: "the challenge was not signed by the key its certificate certifies")
        }
        return attested
    }
}

/// Channels that closed, written offline together.
///
/// Each close was a transaction of its own. Thousands closing at once (a site losing power, a fleet redialling, a node
/// stopping) queued on SQLite's one writing connection past its pool's 10 s wait: those writes failed and their
/// devices kept reading online, their node still heard (issue 13; 2,381 of the benchmark's 15,000). A close that finds
/// a write in progress waits for the next one, which takes every close that came meanwhile: one commit for hundreds.
/// Alone, a close is written at once.
actor ClosedChannels {
    private let store: any LatchkeyStore
    private var waiting: [(serial: String, connectionId: UUID, written: CheckedContinuation<Void, any Error>)] = []
    private var writing = false
    /// Closes written in one transaction at most, so that one commit stays short.
    static let perWrite = 500

    init(store: any LatchkeyStore) {
        self.store = store
    }

    func writeOffline(serial: String, connectionId: UUID) async throws {
        try await withCheckedThrowingContinuation { written in
            waiting.append((serial, connectionId, written))
            guard !writing else { return }
            writing = true
            Task { await self.writeWaiting() }
        }
    }

    private func writeWaiting() async {
        while !waiting.isEmpty {
            let batch = waiting.prefix(Self.perWrite)
            waiting.removeFirst(batch.count)
            let closed = batch.map { ($0.serial, $0.connectionId) }
            do {
                try await store.transaction { session in
                    for (serial, connectionId) in closed { try await session.devices.markOffline(serial: serial, connectionId: connectionId) }
                }
                for close in batch { close.written.resume() }
            } catch {
                for close in batch { close.written.resume(throwing: error) }
            }
        }
        writing = false
    }
}
