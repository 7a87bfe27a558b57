import Foundation
import Histogram
import Synchronization

/// How long a new notification took from its transaction's commit to the write on each open stream, on this node
/// (published here or relayed from another). An HdrHistogram, so that the tail (p99, p99.9) is exact to three digits
/// and not a bucket's edge; `GET /metrics` shows it as a Prometheus summary.
final class DeliveryLatency: Sendable {
    /// Microseconds, up to a minute; a slower delivery is counted as a minute.
    private static let ceiling: UInt64 = 60_000_000

    private struct Recorded {
        var histogram = Histogram<UInt64>(highestTrackableValue: DeliveryLatency.ceiling, numberOfSignificantValueDigits: .three)
        /// Seconds in all, for the summary's `_sum` (the histogram keeps values only to three digits).
        var sum = 0.0
    }

    private let recorded = Mutex(Recorded())

    /// Counts one write that began `publishedAt` (wall clock: relayed notifications were published by another node).
    func record(publishedAt: Date, writtenAt: Date = Date()) {
        let seconds = max(0, writtenAt.timeIntervalSince(publishedAt))
        let microseconds = min(UInt64(seconds * 1e6), Self.ceiling)
        recorded.withLock {
            _ = $0.histogram.record(microseconds)
            $0.sum += seconds
        }
    }

    /// The summary in the Prometheus text format: p50, p90, p99, p99.9 and the largest, then the sum and count.
    var prometheusText: String {
        let snapshot = recorded.withLock { $0 }
        let histogram = snapshot.histogram
        let name = "latchkey_notification_delivery_seconds"
        var lines = [
            "# HELP \(name) From a notification's commit to its write on an open stream (HdrHistogram, 3 significant digits).",
            "# TYPE \(name) summary",
        ]
        for quantile in [0.5, 0.9, 0.99, 0.999, 1.0] {
            let value = histogram.totalCount == 0 ? 0 : (quantile == 1.0 ? histogram.max : histogram.valueAtPercentile(quantile * 100))
            lines.append("\(name){quantile=\"\(quantile)\"} \(Double(value) / 1e6)")
        }
        lines.append("\(name)_sum \(snapshot.sum)")
        lines.append("\(name)_count \(histogram.totalCount)")
        return lines.joined(separator: "\n") + "\n"
    }
}
