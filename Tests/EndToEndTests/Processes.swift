import Foundation
import Testing

/// The built `latchkey` executable, beside the test bundle in the build folder.
enum Latchkey {
    static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("latchkey").path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("latchkey")
    }

    /// What one CLI run printed and how it ended.
    struct Run: Sendable {
        let status: Int32
        let output: String
        let errors: String
        var succeeded: Bool { status == 0 }
        var text: String { output + errors }
    }

    /// Runs `latchkey ARGS` to the end, with `input` on standard input, `home` as `$LATCHKEY_HOME`, optionally inside a
    /// network namespace.
    static func run(_ arguments: [String], home: URL? = nil, input: String = "", namespace: String? = nil,
                    timeout: Duration = .seconds(60)) async throws -> Run {
        let process = makeProcess(arguments, home: home, namespace: namespace)
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let output = Collector()
        let errors = Collector()
        stdout.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        stderr.fileHandleForReading.readabilityHandler = { errors.append($0.availableData) }
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let started = ContinuousClock.now
        while process.isRunning {
            if ContinuousClock.now - started > timeout {
                process.terminate()
                Issue.record("latchkey \(arguments.joined(separator: " ")) timed out:\n\(output.text)\n\(errors.text)")
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        stdout.fileHandleForReading.readabilityHandler = nil
        stderr.fileHandleForReading.readabilityHandler = nil
        output.append(stdout.fileHandleForReading.readDataToEndOfFile())
        errors.append(stderr.fileHandleForReading.readDataToEndOfFile())
        return Run(status: process.terminationStatus, output: output.text, errors: errors.text)
    }

    static func makeProcess(_ arguments: [String], home: URL?, namespace: String?) -> Process {
        let process = Process()
        if let namespace {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = nil
        if let home { environment["LATCHKEY_HOME"] = home.path }
        process.environment = environment
        return process
    }

    /// A `latchkey` process that keeps running (`serve`, `device`, `reset watch`) and whose output is read as it comes.
    final class Background: @unchecked Sendable {
        let process: Process
        private let output = Collector()

        private let input: Pipe?

        /// `typing`: standard input stays open for `type(_:)`, as a person at the terminal answers prompts.
        init(_ arguments: [String], home: URL? = nil, namespace: String? = nil, typing: Bool = false) throws {
            process = Latchkey.makeProcess(arguments, home: home, namespace: namespace)
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            input = typing ? Pipe() : nil
            process.standardInput = input ?? FileHandle.nullDevice
            let output = self.output
            pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
            try process.run()
        }

        var text: String { output.text }

        /// Types a line on the process's standard input (started with `typing: true`).
        func type(_ line: String) {
            input?.fileHandleForWriting.write(Data((line + "\n").utf8))
        }

        /// Waits until a line starting with `prefix` appears, and returns its rest.
        func line(startingWith prefix: String, within timeout: Duration = .seconds(30)) async throws -> String {
            let started = ContinuousClock.now
            while ContinuousClock.now - started < timeout {
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                    return String(line.dropFirst(prefix.count))
                }
                if !process.isRunning { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            throw Failure(description: "no line '\(prefix)' from latchkey:\n\(text)")
        }

        /// Waits until a line containing `fragment` appears, and returns it whole.
        func line(containing fragment: String, within timeout: Duration = .seconds(30)) async throws -> String {
            let started = ContinuousClock.now
            while ContinuousClock.now - started < timeout {
                if let line = text.split(separator: "\n").first(where: { $0.contains(fragment) }) { return String(line) }
                if !process.isRunning { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            throw Failure(description: "no line containing '\(fragment)' from latchkey:\n\(text)")
        }

        /// Waits for the process to end by itself.
        func exit(within timeout: Duration = .seconds(30)) async throws -> Int32 {
            let started = ContinuousClock.now
            while process.isRunning, ContinuousClock.now - started < timeout { try await Task.sleep(for: .milliseconds(25)) }
            if process.isRunning { throw Failure(description: "latchkey did not end:\n\(text)") }
            return process.terminationStatus
        }

        /// One no longer held is stopped: a test or a `World` that fails half-way does not leave it running, holding its
        /// port, for the rest of the run.
        deinit { stop() }

        /// SIGTERM; SIGKILL if it is still there ten seconds later (seen once: a child idle after SIGTERM hung the suite).
        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            let deadline = ContinuousClock.now + .seconds(10)
            while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    }
}

/// A fresh folder, removed at the end of the test.
struct Scratch {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-e2e-\(UUID().uuidString.prefix(8))")
    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    func folder(_ name: String) -> URL { url.appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(at: url) }
}
