import Foundation
import LatchkeyCloud
import Synchronization

/// A clock that moves only when the test says so.
final class ManualClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by interval: TimeInterval) {
        current.withLock { $0 += interval }
    }

    var clock: LatchkeyClock {
        LatchkeyClock { self.now }
    }
}
