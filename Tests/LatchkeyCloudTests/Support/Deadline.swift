import Synchronization

/// Waits for `work` at most `limit`, and returns nil if it has not finished by then. The work is left running: a test
/// of a hang must itself end, and a task group would wait for the hung child.
func finishing<T: Sendable>(within limit: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T?, any Error>) in
        let answer = FirstAnswer(continuation)
        Task {
            do { answer.give(.success(try await work())) } catch { answer.give(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: limit)
            answer.give(.success(nil))
        }
    }
}

/// Resumes a continuation with whichever answer comes first.
private final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T?, any Error>?>

    init(_ continuation: CheckedContinuation<T?, any Error>) { self.continuation = Mutex(continuation) }

    func give(_ result: Result<T?, any Error>) {
        continuation.withLock { waiting in
            waiting?.resume(with: result)
            waiting = nil
        }
    }
}
