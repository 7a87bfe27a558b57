import Foundation
import LatchkeyCloud
import Testing

/// A real SMTP server (aiosmtpd, `scripts/smtp-sink.py`) and the `sendmail` an operator would configure in front of
/// it: Debian's `msmtp`, with the server in its own configuration file (mode 0600), as credentials would be.
final class MailSink: Sendable {
    let port: Int
    let directory: URL
    /// The `sendmail` interface to give `MailSettings`: a script that runs `msmtp -C <this sink's file>`.
    let sendmail: String
    private let server: ProcessBox

    /// A sink whose server is not started yet: mails sent now find nobody listening.
    init() async throws {
        guard try await Self.tools.value == 0 else { throw MailSinkError(what: "scripts/mail-tools.sh could not install msmtp and aiosmtpd") }
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-mail-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("received"), withIntermediateDirectories: true)
        let configuration = directory.appendingPathComponent("msmtprc")
        try "account default\nhost 127.0.0.1\nport \(port)\nauth off\ntls off\ntimeout 10\n".write(to: configuration, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: configuration.path)
        let script = directory.appendingPathComponent("sendmail")
        try "#!/bin/sh\nexec msmtp -C '\(configuration.path)' \"$@\"\n".write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: script.path)
        sendmail = script.path
        server = ProcessBox()
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// Installs msmtp and aiosmtpd when missing (`scripts/mail-tools.sh`), once per test run.
    private static let tools: Task<Int32, any Error> = Task.detached {
        let process = Process()
        process.executableURL = repositoryRoot.appendingPathComponent("scripts/mail-tools.sh")
        try process.run()
        // Polled, not `waitUntilExit()`: a cooperative thread blocked here is one of two on this box.
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        return process.terminationStatus
    }

    /// Starts the SMTP server and waits until it listens.
    func start() async throws {
        let process = Process()
        // Debian's python3 is the one with python3-aiosmtpd.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.repositoryRoot.appendingPathComponent("scripts/smtp-sink.py").path, "--port", String(port),
                             "--dir", directory.appendingPathComponent("received").path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        server.set(process)
        let ready = pipe.fileHandleForReading
        let line = await Task.detached { String(decoding: ready.availableData, as: UTF8.self) }.value
        guard line.contains("ready") else { throw MailSinkError(what: "the SMTP server did not start: \(line)") }
    }

    func stop() {
        server.terminate()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The messages received so far, oldest first.
    func received() throws -> [ReceivedMail] {
        let folder = directory.appendingPathComponent("received")
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted().map {
            try JSONDecoder().decode(ReceivedMail.self, from: Data(contentsOf: folder.appendingPathComponent($0)))
        }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw MailSinkError(what: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// One message as the SMTP server parsed it (Python's `email` package): the envelope, the headers, the two parts.
struct ReceivedMail: Decodable {
    let mailFrom: String
    let rcptTos: [String]
    let headerNames: [String]
    let headers: [String: String]
    let text: String?
    let html: String?
    let defects: [String]

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

struct MailSinkError: Error, CustomStringConvertible {
    let what: String
    var description: String { what }
}

/// The server's process, set once it starts.
final class ProcessBox: @unchecked Sendable {
    private let lock = NSLock()
    private var process: Process?

    func set(_ process: Process) { lock.withLock { self.process = process } }

    /// SIGTERM, then SIGKILL if it is still there a second later.
    func terminate() {
        lock.withLock {
            guard let process, process.isRunning else { return }
            let pid = process.processIdentifier
            kill(pid, SIGTERM)
            for _ in 0..<20 where kill(pid, 0) == 0 && process.isRunning { usleep(50_000) }
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }
}
