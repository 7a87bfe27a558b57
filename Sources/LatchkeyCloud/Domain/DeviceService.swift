import Crypto
import Foundation
import LatchkeyProtocol

/// Devices as the platform meets them: over their channel (connect, heartbeat, disconnect), and as owners bind them
/// to a site with the code on their label.
public struct DeviceService: Sendable {
    let store: any LatchkeyStore
    let clock: LatchkeyClock
    let resets: PasswordResetService
    let notifier: any DeviceNotifier

    public init(store: any LatchkeyStore, clock: LatchkeyClock, resets: PasswordResetService, notifier: any DeviceNotifier) {
        self.store = store
        self.clock = clock
        self.resets = resets
        self.notifier = notifier
    }

    // MARK: - Channel

    /// A device opened its channel and signed the platform's challenge. Returns whether it is bound.
    public func connect(_ hello: DeviceHello, challenge nonce: String) async throws -> Bool {
        try Self.checkHello(hello, challenge: nonce)
        let identity = DeviceIdentity(signingKey: hello.signingKey, agreementKey: hello.agreementKey,
                                      verificationCodeSalt: hello.verificationCodeSalt, verificationCodeHash: hello.verificationCodeHash)
        let now = clock.now()
        let outcome = try await store.transaction { session -> Outcome<Bool> in
            var device = try await session.devices.find(serial: hello.serial)
                ?? Device(serial: hello.serial, model: hello.model, deviceType: hello.deviceType, firmware: hello.firmware,
                          siteId: nil, online: false)
            if device.keysPinned, let pinned = device.identity, !pinned.sameKeys(as: identity) {
                try await session.audit.append(
                    AuditEntry(at: now, actorId: nil, siteId: device.siteId, deviceSerial: device.serial, requestId: nil,
                               action: "device.connected", outcome: "refused: device_key_mismatch",
                               detail: "presented signing key \(hello.signingKey.prefix(16))…"))
                return Outcome(failure: .deviceKeyMismatch(serial: hello.serial))
            }
            if !device.keysPinned { device.identity = identity }
            device.model = hello.model
            device.deviceType = hello.deviceType
            device.firmware = hello.firmware
            device.online = true
            device.lastSeenAt = now
            try await session.devices.save(device)
            try await session.audit.append(
                AuditEntry(at: now, actorId: nil, siteId: device.siteId, deviceSerial: device.serial, requestId: nil,
                           action: "device.connected", outcome: "ok", detail: "\(hello.model) \(hello.firmware)"))
            return Outcome(value: device.siteId != nil)
        }
        return try await outcome.settle(publishingWith: resets.publisher)
    }

    /// The channel is alive: refreshes the time the device was last heard from.
    public func heartbeat(serial: String) async throws {
        let now = clock.now()
        // Only refreshes: a heartbeat racing the channel's close must not bring the device back online.
        try await store.transaction { try await $0.devices.touch(serial: serial, at: now) }
    }

    public func disconnect(serial: String) async throws {
        try await store.transaction { try await $0.devices.markOffline(serial: serial) }
    }

    /// Marks offline every device whose channel has been silent past the limit, on whichever node it was.
    public func markSilentDevicesOffline() async throws {
        let cutoff = clock.now() - Device.silenceLimit
        try await store.transaction { try await $0.devices.markOffline(silentSince: cutoff) }
    }

    // MARK: - Binding

    /// The owner binds a connected device to a site with the code on its label; the device's keys are pinned.
    public func bind(siteId: UUID, serial: String, verificationCode: String, by account: Account) async throws -> Device {
        let code = verificationCode.trimmingCharacters(in: .whitespaces).uppercased()
        let now = clock.now()
        let outcome = try await store.transaction { session -> Outcome<Device> in
            let site = try await SiteService.ownedSite(id: siteId, by: account, in: session)
            guard serial.count <= 64, var device = try await session.devices.find(serial: serial), let identity = device.identity,
                device.isOnline(at: now)
            else { return Outcome(failure: .deviceOffline(serial: serial)) }
            if let until = device.bindLockedUntil, now < until { return Outcome(failure: .locked(until: until)) }
            guard device.siteId == nil else { return Outcome(failure: .deviceAlreadyBound(serial: serial)) }
            guard identity.matches(verificationCode: code) else {
                device.bindFailures += 1
                var failure = LatchkeyError.verificationCodeMismatch(
                    serial: serial, attemptsLeft: BindingRules.maximumFailures - device.bindFailures)
                if device.bindFailures >= BindingRules.maximumFailures {
                    device.bindFailures = 0
                    device.bindLockedUntil = now + BindingRules.lockout
                    failure = .locked(until: now + BindingRules.lockout)
                }
                try await session.devices.save(device)
                try await session.audit.append(
                    AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: serial, requestId: nil,
                               action: "device.bound", outcome: "refused: \(failure.code.rawValue)"))
                return Outcome(failure: failure)
            }
            device.siteId = site.id
            device.keysPinned = true
            device.bindFailures = 0
            device.bindLockedUntil = nil
            try await session.devices.save(device)
            try await session.audit.append(
                AuditEntry(at: now, actorId: account.id, siteId: site.id, deviceSerial: serial, requestId: nil,
                           action: "device.bound", outcome: "ok", detail: "keys pinned"))
            return Outcome(value: device)
        }
        let device = try await outcome.settle(publishingWith: resets.publisher)
        await notifier.bindingChanged(serial: device.serial, siteId: device.siteId)
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
                           action: "device.unbound", outcome: "ok"))
            return notifications
        }
        await resets.publisher.publish(notifications)
        await notifier.bindingChanged(serial: serial, siteId: nil)
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

    /// The hello's fields are bounded and its signature over the challenge verifies with the key it reports.
    static func checkHello(_ hello: DeviceHello, challenge nonce: String) throws(LatchkeyError) {
        for (name, value) in [("serial", hello.serial), ("model", hello.model), ("firmware", hello.firmware)] {
            guard !value.isEmpty, value.count <= 64 else { throw .invalidRequest("The device's \(name) must be 1–64 characters.") }
        }
        guard let signingRaw = Base64URL.decode(hello.signingKey),
            let signingKey = try? Curve25519.Signing.PublicKey(rawRepresentation: signingRaw),
            let agreementRaw = Base64URL.decode(hello.agreementKey),
            (try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: agreementRaw)) != nil
        else { throw .invalidRequest("The device's keys are not Ed25519 and X25519 public keys.") }
        guard let signature = Base64URL.decode(hello.challengeSignature),
            signingKey.isValidSignature(signature, for: ChannelProof.signedBytes(nonce: nonce, serial: hello.serial))
        else { throw .unauthenticated("The device did not prove it holds its signing key.") }
    }
}
