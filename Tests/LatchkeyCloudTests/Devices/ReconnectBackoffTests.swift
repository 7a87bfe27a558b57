import Foundation
import LatchkeyDevice
import Testing

/// A node that restarts is redialled by every device it held: the waits grow, stay bounded, and are spread.
@Suite(.timeLimit(.minutes(3)))
struct ReconnectBackoffTests {
    @Test func waitsDoubleUpToHalfAMinuteEachDrawnInTheSecondHalfOfItsStep() {
        var low = ReconnectBackoff()
        var high = ReconnectBackoff()
        var lows: [Duration] = []
        var highs: [Duration] = []
        for _ in 0..<10 {
            lows.append(low.next(after: .zero) { 0 })
            highs.append(high.next(after: .zero) { 0.999_999 })
        }
        #expect(lows.prefix(4) == [.milliseconds(125), .milliseconds(250), .milliseconds(500), .seconds(1)])
        #expect(lows.last == .seconds(15))
        #expect(highs.allSatisfy { $0 <= .seconds(30) } && highs.last! > .milliseconds(29_999))
        for (wait, ceiling) in zip(highs, lows.map { $0 * 2 }) { #expect(wait < ceiling) }
    }

    @Test func aConnectionThatLastedStartsOverFromAQuarterSecond() {
        var backoff = ReconnectBackoff()
        for _ in 0..<8 { _ = backoff.next(after: .seconds(1)) { 0 } }
        #expect(backoff.next(after: .seconds(31)) { 0 } == .milliseconds(125))
    }

    /// 15,000 devices that lost their node at the same moment do not come back at the same moment: their first
    /// redials spread over the whole window instead of landing at one instant.
    @Test func devicesThatLostTheirNodeTogetherRedialSpreadOut() {
        let firsts = (0..<15_000).map { _ in
            var backoff = ReconnectBackoff()
            return backoff.next(after: .seconds(5))
        }
        let milliseconds = firsts.map { Int($0.components.attoseconds / 1_000_000_000_000_000) }
        #expect(milliseconds.min()! >= 125 && milliseconds.max()! < 250)
        // Every 5 ms slot of the window gets some, none more than twice its share.
        let slots = Dictionary(grouping: milliseconds) { ($0 - 125) / 5 }.mapValues(\.count)
        #expect(slots.count == 25)
        #expect(slots.values.max()! < 2 * 15_000 / 25)
    }
}
