import Foundation
@testable import LatchkeyCloud
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The buffers of a connection whose TLS the node ends hold memory only for the pages written (issue 13: an idle `wss`
/// channel held swift-nio-ssl's 32 KiB and 16 KiB buffers whole).
@Suite("TLS connection buffers")
struct TLSBufferMemoryTests {
    /// How many of the pages under a buffer's storage are resident (`mincore`).
    private func residentPages(_ buffer: ByteBuffer) throws -> Int {
        let pageSize = TLSBufferMemory.pageSize
        let pages = (buffer.capacity + pageSize - 1) / pageSize
        var resident = [UInt8](repeating: 0, count: pages)
        try buffer.withVeryUnsafeBytes { storage in
            let start = try #require(storage.baseAddress)
            #expect(Int(bitPattern: start) % pageSize == 0, "a large buffer starts on a page")
            #expect(mincore(UnsafeMutableRawPointer(mutating: start), pages * pageSize, &resident) == 0)
        }
        return resident.filter { $0 & 1 == 1 }.count
    }

    @Test(arguments: [16 * 1024, 32 * 1024])
    func aLargeBufferHoldsOnlyThePagesWrittenEvenWhereAnEarlierOneWroteThemAll(capacity: Int) throws {
        let allocator = TLSBufferMemory.allocator
        // An earlier connection's buffer, written whole and given back: malloc hands such memory out again.
        for _ in 0..<4 {
            var earlier = allocator.buffer(capacity: capacity)
            earlier.writeRepeatingByte(0xA5, count: capacity)
        }
        var buffer = allocator.buffer(capacity: capacity)
        #expect(try residentPages(buffer) == 0)
        // A heartbeat's record: a few hundred bytes.
        buffer.writeRepeatingByte(0x17, count: 300)
        #expect(try residentPages(buffer) == 1)
        #expect(buffer.readableBytesView.allSatisfy { $0 == 0x17 })
    }

    @Test func buffersKeepTheirBytesAsTheyGrowAcrossTheSizeThatSparesPages() throws {
        let allocator = TLSBufferMemory.allocator
        for start in [64, 2048, 16 * 1024] {
            var buffer = allocator.buffer(capacity: start)
            var expected: [UInt8] = []
            for round in 0..<70 {
                let chunk = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ round) }
                buffer.writeBytes(chunk)
                expected += chunk
            }
            #expect(buffer.capacity >= 70_000)
            #expect(Array(buffer.readableBytesView) == expected, "grown from \(start) bytes")
        }
    }
}
