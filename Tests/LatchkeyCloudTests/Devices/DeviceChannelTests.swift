import Crypto
import Foundation
import SQLKit
import Hummingbird
import HummingbirdWSClient
import LatchkeyCloud
import LatchkeyDevice
import LatchkeyProtocol
import Logging
import Testing

@Suite("Device channel and binding", .timeLimit(.minutes(3)))
struct DeviceChannelTests {
    @Test func aDeviceProvesItsKeyAndIsBoundWithTheCodeOnItsLabel() async throws {
        try await TestPlatform.run(.live) { app in
            let owner = try await app.signUp(.owner)
            let site = try await app.createSite(by: owner)
            let device = try await DeviceHarness.start(on: app)
            let stored = try #require(try await app.platform.store.read { try await $0.devices.find(serial: device.serial) })
            #expect(stored.identity?.signingKey == Base64URL.encode(await device.device.signingPublicKey.rawRepresentation))
            #expect(!stored.keysPinned)
            #expect(stored.siteId == nil)

            let bind = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                          body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode.lowercased()))
            #expect(bind.status == .created)
            let bound: API.Device = try bind.decode()
            #expect(bound.online && bound.compatible && bound.siteId == site.id)
            #expect(try await app.platform.store.read { try await $0.devices.find(serial: device.serial) }?.keysPinned == true)
            let again = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                           body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
            #expect(again.errorCode == .deviceAlreadyBound)
            await device.stop()
        }
    }

    @Test func onlyAConnectedDeviceCanBeBound() async throws {
        try await TestPlatform.run(.live) { app in
            let owner = try await app.signUp(.owner)
            let site = try await app.createSite(by: owner)
            let unknown = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                             body: API.BindDevice(serial: "NEVER-SEEN", verificationCode: "ABCDEF"))
            #expect(unknown.status == .conflict)
            #expect(unknown.errorCode == .deviceOffline)

            let device = try await DeviceHarness.start(on: app)
            await device.stop()
            // Closing the channel takes the device offline at once.
            var online = true
            for _ in 0..<100 where online {
                online = try await app.platform.store.read { try await $0.devices.find(serial: device.serial) }?.online ?? true
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!online)
            let offline = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                             body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
            #expect(offline.errorCode == .deviceOffline)
        }
    }

    @Test func fiveWrongCodesLockBindingForThirtyMinutes() async throws {
        try await TestPlatform.run(.live) { app in
            let owner = try await app.signUp(.owner)
            let site = try await app.createSite(by: owner)
            let device = try await DeviceHarness.start(on: app)
            let wrong = device.verificationCode == "ZZZZZZ" ? "YYYYYY" : "ZZZZZZ"
            for attempt in 1...5 {
                let answer = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                                body: API.BindDevice(serial: device.serial, verificationCode: wrong))
                if attempt < 5 {
                    #expect(answer.status == .forbidden)
                    #expect(answer.errorCode == .verificationCodeMismatch)
                } else {
                    #expect(answer.status.code == 423)
                    #expect(answer.errorCode == .locked)
                }
            }
            let rightButLocked = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                                    body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
            #expect(rightButLocked.errorCode == .locked)
            #expect(try await app.platform.store.read { try await $0.devices.find(serial: device.serial) }?.siteId == nil)

            app.clock.advance(by: 30 * 60)
            try await device.waitUntilConnected(to: app, freshAt: app.clock.now)
            let afterLock = try await app.call(.post, "/api/v1/sites/\(site.id)/devices", token: owner.token,
                                               body: API.BindDevice(serial: device.serial, verificationCode: device.verificationCode))
            #expect(afterLock.status == .created)
            await device.stop()
        }
    }

    @Test func aBoundSerialWithOtherKeysIsRefusedAndAudited() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            // The manufacturer certified other keys for the same serial (a cloned or re-issued identity): the pin holds.
            let other = try TestManufacturer.trusted.issue(serial: scene.device.serial, model: "DS-7608NI-K2", now: app.clock.now)
            let impostor = try await ImpostorDevice.connect(to: app, identity: other)
            #expect(impostor == .refused(code: .deviceKeyMismatch, message: LatchkeyError.deviceKeyMismatch(serial: scene.device.serial).message))
            let stored = try #require(try await app.platform.store.read { try await $0.devices.find(serial: scene.device.serial) })
            #expect(stored.identity?.signingKey == Base64URL.encode(await scene.device.device.signingPublicKey.rawRepresentation))
            let history: [API.AuditEntry] = try await app.call(.get, "/api/v1/devices/\(scene.device.serial)/audit", token: scene.owner.token).decode()
            #expect(history.contains { $0.action == "device.connected" && $0.outcome == "refused: device_key_mismatch" })
            await scene.stop()
        }
    }

    /// Presence is the node's, not a write per heartbeat: an idle channel leaves its device's row alone while the
    /// device stays online.
    @Test func anIdleChannelWritesNothingToItsDevicesRow() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            func stored() async throws -> (lastSeen: Date?, online: Bool) {
                let row = try #require(try await (app.platform.database as! any SQLDatabase)
                    .raw("SELECT last_seen_at, online FROM devices WHERE serial = \(bind: scene.device.serial)").first())
                return (try row.decode(column: "last_seen_at", as: Date?.self), try row.decode(column: "online", as: Bool.self))
            }
            let before = try await stored()
            // Time passes (the heartbeats write the clock's time) and several heartbeats go by (every 500 ms here).
            app.clock.advance(by: 5)
            try await Task.sleep(for: .seconds(2))
            let after = try await stored()
            #expect(after.lastSeen == before.lastSeen, "a heartbeat wrote to the device's row")
            #expect(after.online)
            let listed: [API.Device] = try await app.call(.get, "/api/v1/sites/\(scene.site.id)/devices", token: scene.owner.token).decode()
            #expect(listed.first { $0.serial == scene.device.serial }?.online == true, "the device reads online: its node is heard")
            await scene.stop()
        }
    }

    /// A node that stops being heard (it died, or lost the database) has its devices read offline at once past the
    /// limit, and written offline by the next sweep on any node; a node heard from keeps its devices online, however
    /// long ago they connected. A device written before presence was by node (no node) goes by its own time.
    @Test func theSweepWritesTheDevicesOfASilentNodeOffline() async throws {
        try await TestPlatform.run { app in
            let now = app.clock.now
            try await app.platform.store.transaction { session in
                try await session.devices.nodeHeard("dead-node", at: now - Device.silenceLimit - 1)
                try await session.devices.nodeHeard("live-node", at: now - 5)
                let devices: [(String, String?, Date)] = [
                    ("ON-DEAD-NODE", "dead-node", now - 3600), ("ON-LIVE-NODE", "live-node", now - 3600),
                    ("NO-NODE-SILENT", nil, now - Device.silenceLimit - 1), ("NO-NODE-HEARD", nil, now - 5),
                ]
                for (serial, node, lastSeen) in devices {
                    try await session.devices.save(Device(serial: serial, model: "DS-7608NI-K2", deviceType: .nvr, firmware: "V4.62.200",
                                                          siteId: nil, online: true, lastSeenAt: lastSeen, nodeId: node))
                }
            }
            func device(_ serial: String) async throws -> Device? { try await app.platform.store.read { try await $0.devices.find(serial: serial) } }
            #expect(try await device("ON-DEAD-NODE")?.isOnline(at: now) == false, "read offline before any sweep")
            #expect(try await device("ON-LIVE-NODE")?.isOnline(at: now) == true)
            try await app.platform.devices.markSilentDevicesOffline()
            #expect(try await device("ON-DEAD-NODE")?.online == false)
            #expect(try await device("ON-LIVE-NODE")?.online == true)
            #expect(try await device("NO-NODE-SILENT")?.online == false)
            #expect(try await device("NO-NODE-HEARD")?.online == true)
        }
    }

    /// Thousands of channels closing at once (a site losing power, a fleet redialling, a node stopping) are all written
    /// offline. Each close was a transaction of its own, queued on SQLite's one writing connection: the benchmark's
    /// 15,000 devices leaving at once logged 2,381 "Connection request timed out", and those devices kept reading
    /// online, since their node was still heard.
    @Test func thousandsOfChannelsClosingAtOnceAreAllWrittenOffline() async throws {
        try await TestPlatform.run { app in
            let connections = (0..<12_000).map { (serial: "CLOSING-\($0)", connection: UUID()) }
            let now = app.clock.now
            try await app.platform.store.transaction { session in
                for (serial, connection) in connections {
                    try await session.devices.save(Device(serial: serial, model: "DS-2CD2143G2-I", deviceType: .camera, firmware: "V5.7.3",
                                                          siteId: nil, online: true, lastSeenAt: now, connectionId: connection))
                }
            }
            let failures = await withTaskGroup(of: Bool.self) { group in
                for (serial, connection) in connections {
                    group.addTask { (try? await app.platform.devices.disconnect(serial: serial, connectionId: connection)) == nil }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(failures == 0)
            let online = try await (app.platform.database as! any SQLDatabase)
                .raw("SELECT COUNT(*) AS n FROM devices WHERE online = \(bind: true)").first()?.decode(column: "n", as: Int.self)
            #expect(online == 0)
        }
    }

    @Test func unbindingReleasesTheDeviceAndEndsItsRequests() async throws {
        try await TestPlatform.run(.live) { app in
            let scene = try await BoundDeviceScene.start(on: app)
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            #expect(try await app.call(.delete, "/api/v1/sites/\(scene.site.id)/devices/\(scene.device.serial)", token: scene.owner.token).status == .noContent)
            #expect(try await app.call(.get, "/api/v1/password-resets/\(request.id)", token: scene.owner.token).decode(API.PasswordReset.self).status == .cancelled)
            let stored = try await app.platform.store.read { try await $0.devices.find(serial: scene.device.serial) }
            #expect(stored?.siteId == nil && stored?.keysPinned == false)
            await scene.stop()
        }
    }
}

/// A device that claims a serial with an identity of its own, speaking the channel protocol by hand.
enum ImpostorDevice {
    static func connect(to app: TestPlatform, identity: DeviceIdentityFile) async throws -> DeviceChannelMessage? {
        let port = try #require(app.client.port)
        let signing = try identity.signingPrivateKey
        let answer = AnswerBox()
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/api/v1/devices/channel", logger: Logger(label: "impostor")) { inbound, outbound, _ in
            var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
            guard case .text(let text)? = try await messages.next(),
                case .challenge(let nonce)? = DeviceChannelMessage(text: text)
            else { return }
            let hello = DeviceHello(
                serial: identity.serial, deviceType: .nvr, firmware: "V4.62.200", certificateChain: identity.chain,
                challengeSignature: Base64URL.encode(try signing.signature(for: ChannelProof.signedBytes(nonce: nonce, serial: identity.serial))),
                deviceNonce: Base64URL.random(), lanAddresses: [])
            try await outbound.write(.text(try DeviceChannelMessage.hello(hello).text))
            if case .text(let reply)? = try await messages.next() {
                if let message = DeviceChannelMessage(text: reply) { await answer.set(message) }
            }
        }
        return await answer.value
    }

    actor AnswerBox {
        var value: DeviceChannelMessage?
        func set(_ value: DeviceChannelMessage) { self.value = value }
    }
}
