@testable import LatchkeyCloud
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// The node's side of a device channel's heartbeat, on a channel whose clock the test moves: a device that pings is
/// answered and never pinged, a silent one is pinged after `silence` and closed when nothing comes back in time.
@Suite(.timeLimit(.minutes(1)))
struct ChannelHeartbeatTests {
    /// The service's defaults: a device pings every 60 s. The watch looks every 5 s, which divides both.
    static let silence = Duration.seconds(75)
    static let answerWithin = Duration.seconds(15)

    /// A connected channel with the heartbeat, on `loop` and watched by `watch` (each its own unless given).
    static func channel(
        on loop: EmbeddedEventLoop = EmbeddedEventLoop(),
        watchedBy watch: ChannelSilenceWatch = ChannelSilenceWatch(silence: silence, answerWithin: answerWithin)
    ) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        try channel.pipeline.syncOperations.addHandler(ChannelHeartbeat(watch: watch))
        return channel
    }

    static func frame(_ opcode: WebSocketOpcode, _ text: String = "") -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, data: ByteBuffer(string: text))
    }

    static func advance(_ channel: EmbeddedChannel, _ duration: Duration) {
        channel.embeddedEventLoop.advanceTime(by: TimeAmount(duration))
    }

    static func written(_ channel: EmbeddedChannel) throws -> [WebSocketOpcode] {
        var opcodes: [WebSocketOpcode] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) { opcodes.append(frame.opcode) }
        return opcodes
    }

    @Test func aDevicePingingEveryMinuteIsAnsweredAndNeverPingedNorClosed() throws {
        let channel = try Self.channel()
        for _ in 0..<10 {
            Self.advance(channel, .seconds(60))
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
        Self.advance(channel, Self.silence - .seconds(1))
        #expect(try Self.written(channel).isEmpty)
        Self.advance(channel, .seconds(1))
        #expect(try Self.written(channel) == [.ping])
        Self.advance(channel, Self.answerWithin - .seconds(1))
        #expect(channel.isActive)
        Self.advance(channel, .seconds(1))
        #expect(!channel.isActive, "a device that lost power reads offline 90 s after it was last heard")
    }

    @Test func aSilentDeviceThatAnswersThePingStaysConnected() throws {
        let channel = try Self.channel()
        Self.advance(channel, Self.silence)
        #expect(try Self.written(channel) == [.ping])
        Self.advance(channel, .seconds(5))
        try channel.writeInbound(Self.frame(.pong))
        Self.advance(channel, Self.answerWithin)
        #expect(channel.isActive)
        #expect(try Self.written(channel).isEmpty)
        // Heard 5 s after the ping: the next ping is due a whole silence after that.
        Self.advance(channel, Self.silence - Self.answerWithin - .seconds(1))
        #expect(try Self.written(channel).isEmpty)
        Self.advance(channel, .seconds(1))
        #expect(try Self.written(channel) == [.ping])
    }

    /// One round looks at every channel of a loop: the silent one is closed while it walks them, the other stays.
    @Test func oneRoundWatchesEveryChannelOfALoop() throws {
        let loop = EmbeddedEventLoop()
        let watch = ChannelSilenceWatch(silence: Self.silence, answerWithin: Self.answerWithin)
        let silent = try Self.channel(on: loop, watchedBy: watch)
        let talking = try Self.channel(on: loop, watchedBy: watch)
        for _ in 0..<3 {
            loop.advanceTime(by: .seconds(30))
            try talking.writeInbound(Self.frame(.ping, "beat"))
        }
        #expect(!silent.isActive)
        #expect(talking.isActive)
        #expect(try Self.written(silent) == [.ping])
        #expect(try Self.written(talking) == [.pong, .pong, .pong])
    }
}
