@testable import LatchkeyCloud
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// The node's side of a device channel's heartbeat, on a channel whose clock the test moves: a device that pings is
/// answered and never pinged, a silent one is pinged after `silence` and closed when nothing comes back in time.
@Suite(.timeLimit(.minutes(1)))
struct ChannelHeartbeatTests {
    /// The service's defaults: a device pings every 60 s.
    static let silence = TimeAmount.seconds(75)
    static let answerWithin = TimeAmount.seconds(15)

    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        try channel.pipeline.syncOperations.addHandler(ChannelHeartbeat(silence: silence, answerWithin: answerWithin))
        return channel
    }

    static func frame(_ opcode: WebSocketOpcode, _ text: String = "") -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(string: text))
    }

    static func written(_ channel: EmbeddedChannel) throws -> [WebSocketOpcode] {
        var opcodes: [WebSocketOpcode] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) { opcodes.append(frame.opcode) }
        return opcodes
    }

    @Test func aDevicePingingEveryMinuteIsAnsweredAndNeverPingedNorClosed() throws {
        let channel = try Self.channel()
        for _ in 0..<10 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(60))
            try channel.writeInbound(Self.frame(.ping, "beat"))
            #expect(try Self.written(channel) == [.pong])
        }
        #expect(channel.isActive)
        // The heartbeat keeps control frames; everything else goes on to the channel's handler.
        try channel.writeInbound(Self.frame(.text, "{}"))
        #expect(try channel.readInbound(as: WebSocketFrame.self)?.opcode == .text)
        #expect(try channel.readInbound(as: WebSocketFrame.self) == nil)
    }

    @Test func aSilentDeviceIsPingedAfterTheSilenceAndClosedWhenItDoesNotAnswerInTime() throws {
        let channel = try Self.channel()
        channel.embeddedEventLoop.advanceTime(by: Self.silence - .seconds(1))
        #expect(try Self.written(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try Self.written(channel) == [.ping])
        channel.embeddedEventLoop.advanceTime(by: Self.answerWithin - .seconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive, "a device that lost power reads offline 90 s after it was last heard")
    }

    @Test func aSilentDeviceThatAnswersThePingStaysConnected() throws {
        let channel = try Self.channel()
        channel.embeddedEventLoop.advanceTime(by: Self.silence)
        #expect(try Self.written(channel) == [.ping])
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try channel.writeInbound(Self.frame(.pong))
        channel.embeddedEventLoop.advanceTime(by: Self.answerWithin)
        #expect(channel.isActive)
        #expect(try Self.written(channel).isEmpty)
        // Heard 5 s after the ping: the next ping is due a whole silence after that.
        channel.embeddedEventLoop.advanceTime(by: Self.silence - Self.answerWithin - .seconds(1))
        #expect(try Self.written(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try Self.written(channel) == [.ping])
    }
}
