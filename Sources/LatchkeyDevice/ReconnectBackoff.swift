import Foundation

/// How long a device waits before it dials the platform again: doubling from 250 ms to 30 s, and drawn at random
/// within the second half of that ("equal jitter"). Without the draw, every device a node held when it restarted
/// redialled at the same instants (250 ms, 500 ms, 1 s, …) and each wave met the new node at once.
public struct ReconnectBackoff: Sendable {
    public static let first = Duration.milliseconds(250)
    public static let longest = Duration.seconds(30)
    /// A connection that lived this long was a good one: the next failure starts from `first` again.
    public static let healthy = Duration.seconds(30)

    private var ceiling = ReconnectBackoff.first

    public init() {}

    /// The wait after a connection that lasted `lasted`, drawing with `random` (a value in 0..<1).
    public mutating func next(after lasted: Duration, random: () -> Double = { Double.random(in: 0..<1) }) -> Duration {
        if lasted > Self.healthy { ceiling = Self.first }
        let wait = ceiling / 2 + ceiling / 2 * random()
        ceiling = min(ceiling * 2, Self.longest)
        return wait
    }
}
