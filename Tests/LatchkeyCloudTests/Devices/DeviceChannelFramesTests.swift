@testable import LatchkeyCloud
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// The node's side of a device channel's frames, without a task holding the channel: messages put together from their
/// frames and answered in order, the limits a device must keep, the closing handshake either way, and the channel's end
/// told once, after the messages that were still waiting.
@Suite(.timeLimit(.minutes(1)))
struct DeviceChannelFramesTests {
    /// What the answering side saw, in order: each message, then "ended".
    final class Seen: Sendable {
        private let events = NIOLockedValueBox<[String]>([])
        func add(_ event: String) { events.withLockedValue { $0.append(event) } }
        var all: [String] { events.withLockedValue { $0 } }

        func serve(_ connection: DeviceConnection) {
            connection.serve(answer: { self.add($0) }, ended: { self.add("ended") })
        }

        /// Waits up to a few seconds for `count` events.
        func waitFor(_ count: Int) async throws -> [String] {
            for _ in 0..<300 where all.count < count { try await Task.sleep(for: .milliseconds(10)) }
            return all
        }
    }

    static func connected() async throws -> (NIOAsyncTestingChannel, DeviceConnection, DeviceConnections) {
        let roster = DeviceConnections()
        let channel = NIOAsyncTestingChannel()
        let frames = DeviceChannelFrames(eventLoop: channel.eventLoop, helloTimeout: .seconds(5), roster: roster)
        try await channel.pipeline.addHandler(frames)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        // As the handshake has it: the connection the frames put on the roster when added.
        return (channel, try #require(roster.all.first), roster)
    }

    /// A frame as a device sends it: masked.
    static func fromDevice(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true) -> WebSocketFrame {
        let key = WebSocketMaskingKey.random()
        var data = ByteBuffer(string: text)
        data.webSocketMask(key)
        return WebSocketFrame(fin: fin, opcode: opcode, maskKey: key, data: data)
    }

    /// The close frame the node wrote: its code and reason.
    static func closeWritten(_ channel: NIOAsyncTestingChannel) async throws -> (WebSocketErrorCode?, String) {
        var frame = try await channel.waitForOutboundWrite(as: WebSocketFrame.self)
        while frame.opcode != .connectionClose { frame = try await channel.waitForOutboundWrite(as: WebSocketFrame.self) }
        var data = frame.data
        let code = data.readWebSocketErrorCode()
        return (code, data.readString(length: data.readableBytes) ?? "")
    }

    @Test func messagesArePutTogetherFromTheirFramesAndAnsweredInOrder() async throws {
        let (channel, connection, _) = try await Self.connected()
        try await channel.writeInbound(Self.fromDevice(.text, "hello"))
        #expect(try await connection.firstMessage() == "hello")
        // Said while the handshake was still going: kept for when the channel is served.
        try await channel.writeInbound(Self.fromDevice(.text, "zero"))
        let seen = Seen()
        seen.serve(connection)
        try await channel.writeInbound(Self.fromDevice(.text, "on", fin: false))
        try await channel.writeInbound(Self.fromDevice(.continuation, "e"))
        try await channel.writeInbound(Self.fromDevice(.binary, "not for us"))
        try await channel.writeInbound(Self.fromDevice(.text, "two"))
        #expect(try await seen.waitFor(3) == ["zero", "one", "two"])
        #expect(try await channel.isActive)
    }

    @Test func aDeviceThatStopsSendingHasLeftAndItsEndIsToldOnceAfterItsMessages() async throws {
        let (channel, connection, roster) = try await Self.connected()
        try await channel.writeInbound(Self.fromDevice(.text, "hello"))
        _ = try await connection.firstMessage()
        try await channel.writeInbound(Self.fromDevice(.text, "receipt 1"))
        try await channel.writeInbound(Self.fromDevice(.text, "receipt 2"))
        #expect(roster.all.count == 1)
        // The node's connections allow half-closure: the device's FIN arrives as an event, not as the channel's end.
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let seen = Seen()
        seen.serve(connection)
        #expect(try await seen.waitFor(3) == ["receipt 1", "receipt 2", "ended"])
        try await Task.sleep(for: .milliseconds(100))
        #expect(seen.all.count == 3)
        #expect(try await !channel.isActive)
        #expect(roster.all.isEmpty)
    }

    @Test func aConnectionGoneBeforeItsHelloGivesNoHello() async throws {
        let (channel, connection, _) = try await Self.connected()
        try await channel.close()
        #expect(try await connection.firstMessage() == nil)
        await #expect(throws: (any Error).self) { try await connection.write("too late") }
    }

    @Test func aMessageLargerThanTheLimitIsRefusedWithItsCode() async throws {
        let (channel, connection, _) = try await Self.connected()
        let sixteenKiB = String(repeating: "x", count: 16 * 1024)
        try await channel.writeInbound(Self.fromDevice(.text, sixteenKiB, fin: false))
        for _ in 0..<4 { try await channel.writeInbound(Self.fromDevice(.continuation, sixteenKiB, fin: false)) }
        let (code, _) = try await Self.closeWritten(channel)
        #expect(code == .messageTooLarge)
        // Nothing after the close frame: the device's further frames are not read, nothing more is written.
        try await channel.writeInbound(Self.fromDevice(.continuation, "x"))
        await #expect(throws: (any Error).self) { try await connection.write("after the close") }
        // The device's answer to the close frame ends the connection.
        try await channel.writeInbound(Self.fromDevice(.connectionClose, ""))
        #expect(try await !channel.isActive)
        #expect(try await connection.firstMessage() == nil)
    }

    @Test func anUnmaskedFrameOrAContinuationOfNothingIsAProtocolError() async throws {
        let (unmasked, _, _) = try await Self.connected()
        try await unmasked.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "hello")))
        #expect(try await Self.closeWritten(unmasked).0 == .protocolError)

        let (stray, _, _) = try await Self.connected()
        try await stray.writeInbound(Self.fromDevice(.continuation, "x"))
        #expect(try await Self.closeWritten(stray).0 == .protocolError)
    }

    @Test func theDevicesCloseIsAnsweredWithItsCodeAndTheConnectionEnds() async throws {
        let (channel, connection, _) = try await Self.connected()
        try await channel.writeInbound(Self.fromDevice(.text, "hello"))
        _ = try await connection.firstMessage()
        let seen = Seen()
        seen.serve(connection)
        let key = WebSocketMaskingKey.random()
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .goingAway)
        data.webSocketMask(key)
        try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: key, data: data))
        #expect(try await Self.closeWritten(channel).0 == .goingAway)
        #expect(try await seen.waitFor(1) == ["ended"])
        #expect(try await !channel.isActive)
    }

    @Test func theNodesCloseSaysWhyAndEndsTheConnectionWhenTheDeviceAnswers() async throws {
        let (channel, connection, _) = try await Self.connected()
        try await connection.close(.policyViolation, reason: "no hello")
        let (code, reason) = try await Self.closeWritten(channel)
        #expect(code == .policyViolation)
        #expect(reason == "no hello")
        #expect(try await channel.isActive)
        try await channel.writeInbound(Self.fromDevice(.connectionClose, ""))
        #expect(try await !channel.isActive)
    }

    @Test func aStoppingServiceClosesTheChannelsItHolds() async throws {
        let held = NIOLockedValueBox<RawConnection?>(nil)
        // The connection stays silent, and answers no ping: a hello timeout and a silence longer than any loaded run's
        // shutdown. On PostgreSQL in CI, a stop took longer than the tests' 5 s, and the channel was closed for want of
        // a hello; with only the hello's timeout longer, for want of a pong (pinged after 5 s, closed 5 s later).
        try await TestPlatform.run(.live, configure: {
            $0.deviceHelloTimeout = .seconds(120)
            $0.channelPingInterval = .seconds(120)
        }) { app in
            let (connection, said) = try await StreamAndChannelLimitTests.openChannel(port: try #require(app.client.port))
            #expect(said.contains("challenge"), "\(said)")
            held.withLockedValue { $0 = connection }
        }
        let connection = try #require(held.withLockedValue { $0 })
        // No task holds the channel for the server to wait on: the service closes it itself, and says why.
        let closed = try await connection.readUntilClosed(limit: .seconds(20))
        #expect(closed?.text.contains("service stopping") == true, "\(String(describing: closed))")
    }

    static let upgradeHeaders = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + "Sec-WebSocket-Version: 13\r\n"

    /// Only the device channel's path upgrades; a connection that asked for another is answered 400 and closed.
    @Test func anUpgradeToAnotherPathIsRefused() async throws {
        try await TestPlatform.run(.live) { app in
            let connection = try await RawConnection.open(port: try #require(app.client.port))
            try await connection.send("GET /api/v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\n\(Self.upgradeHeaders)\r\n")
            let answer = try #require(try await connection.readUntilClosed(limit: .seconds(10)))
            #expect(answer.text.hasPrefix("HTTP/1.1 400"), "\(answer.text)")
        }
    }

    /// NIO upgrades only a connection's first request: a later one asking for the channel is sent to a new connection.
    @Test func anUpgradeAskedForLaterOnAKeptAliveConnectionIsRedirected() async throws {
        try await TestPlatform.run(.live) { app in
            let connection = try await RawConnection.open(port: try #require(app.client.port))
            try await connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try await connection.send("GET \(DeviceChannel.path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(Self.upgradeHeaders)\r\n")
            let answer = try #require(try await connection.readUntilClosed(limit: .seconds(10)))
            #expect(answer.text.hasPrefix("HTTP/1.1 200"), "\(answer.text)")
            #expect(answer.text.contains("HTTP/1.1 307"), "\(answer.text)")
            #expect(answer.text.lowercased().contains("location: \(DeviceChannel.path)"), "\(answer.text)")
        }
    }
}
