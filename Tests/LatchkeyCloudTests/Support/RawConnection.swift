import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A TCP connection driven byte by byte, as a slow or hostile client would: for what the HTTP layer does before any
/// route runs. One task at a time uses it.
final class RawConnection: @unchecked Sendable {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let gaveUp = Mutex(false)

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        self.channel = channel
        self.inbound = channel.inbound.makeAsyncIterator()
    }

    deinit {
        channel.outbound.finish()
        channel.channel.close(promise: nil)
    }

    static func open(port: Int) async throws -> RawConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawConnection(channel: channel)
    }

    func send(_ text: String) async throws {
        try await channel.channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Sends `text` one byte every `interval`, stopping quietly when the server has closed the connection.
    func trickle(_ text: String, every interval: Duration) async {
        for byte in Array(text.utf8) {
            do { try await channel.channel.writeAndFlush(ByteBuffer(bytes: [byte])) } catch { return }
            try? await Task.sleep(for: interval)
        }
    }

    /// What the server sent until it closed the connection, and how long that took; nil if it was still open after
    /// `limit` (then this side closes it).
    func readUntilClosed(limit: Duration) async throws -> (text: String, after: Duration)? {
        let start = ContinuousClock.now
        let timer = giveUp(after: limit)
        var text = ""
        do {
            while let buffer = try await inbound.next() { text += String(buffer: buffer) }
        } catch {}
        timer.cancel()
        return gaveUp.withLock { $0 } ? nil : (text, ContinuousClock.now - start)
    }

    /// Reads until `marker` has arrived (an answer's end, say); closes the connection if it has not after `limit`.
    func read(until marker: String, limit: Duration) async throws -> String {
        let timer = giveUp(after: limit)
        var text = ""
        while !text.contains(marker), let buffer = try await inbound.next() { text += String(buffer: buffer) }
        timer.cancel()
        return text
    }

    private func giveUp(after limit: Duration) -> Scheduled<Void> {
        let (seconds, attoseconds) = limit.components
        return channel.channel.eventLoop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
            self.gaveUp.withLock { $0 = true }
            self.channel.channel.close(promise: nil)
        }
    }
}
