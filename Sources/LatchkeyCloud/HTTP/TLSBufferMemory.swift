import HummingbirdCore
import Logging
@_spi(CustomByteBufferAllocator) import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The buffers of a connection whose TLS the node ends take memory only for the pages that are written.
///
/// swift-nio-ssl gives every connection a 32 KiB buffer for the plaintext it reads and a 16 KiB one for the records
/// it writes, for the life of the connection. An idle device channel writes a few hundred bytes into each, yet held
/// 68–72 KiB a channel over `wss` against 36 KiB over plain `ws` (issue 13): `malloc` hands back chunks that earlier
/// connections had written, so every page of them stays resident. This allocator gives a large buffer's whole pages
/// back to the kernel when it is allocated (`MADV_DONTNEED`): a page comes back, zeroed, only when it is written.
/// Measured with 15,000 idle channels: 71.5 → 52.7 KiB a channel.
enum TLSBufferMemory {
    /// Buffers from this size on give their untouched pages back: swift-nio-ssl's two, and a receive buffer that grew
    /// (NIO's adaptive receive sizes are powers of two, up to 64 KiB). Smaller ones are as `malloc` gives them.
    static let sparseFrom = 16 * 1024

    static let allocator = ByteBufferAllocator(
        allocate: { size in
            guard size >= TLSBufferMemory.sparseFrom else {
                guard let memory = malloc(size) else { TLSBufferMemory.outOfMemory(size) }
                return memory
            }
            // On a page boundary, so that the first bytes written (all an idle connection writes) take one page.
            var memory: UnsafeMutableRawPointer?
            guard posix_memalign(&memory, TLSBufferMemory.pageSize, size) == 0, let memory else { TLSBufferMemory.outOfMemory(size) }
            TLSBufferMemory.releaseWholePages(memory, size)
            return memory
        },
        reallocate: { memory, _, size in
            // A buffer grows when it is about to be written: the new pages are wanted.
            guard let grown = realloc(memory, size) else { TLSBufferMemory.outOfMemory(size) }
            return grown
        },
        deallocate: { free($0) },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: count) }
    )

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// As NIO's own allocator does when `malloc` fails: a buffer it cannot have is not an error a caller could handle.
    static func outOfMemory(_ size: Int) -> Never { fatalError("out of memory for a \(size)-byte buffer") }

    /// The pages wholly inside `[memory, memory + size)` no longer hold memory; the partial ones at each end, which
    /// `malloc`'s own bookkeeping may share, are left as they are.
    static func releaseWholePages(_ memory: UnsafeMutableRawPointer, _ size: Int) {
        let start = (Int(bitPattern: memory) + pageSize - 1) / pageSize * pageSize
        let end = (Int(bitPattern: memory) + size) / pageSize * pageSize
        guard end > start, let first = UnsafeMutableRawPointer(bitPattern: start) else { return }
        // Advice only: should the kernel refuse it, the buffer is as `malloc` gave it, which is still correct.
        _ = madvise(first, end - start, MADV_DONTNEED)
    }
}

/// A connection that ends TLS at the node, with its buffers from `TLSBufferMemory` (set before the TLS handler is
/// added, which takes its buffers from the channel's allocator as it is added).
struct SparseTLSBufferChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(ChannelOptions.allocator, value: TLSBufferMemory.allocator)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
