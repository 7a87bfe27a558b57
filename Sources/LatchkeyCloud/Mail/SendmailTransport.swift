import Foundation
import Subprocess
import SystemPackage

/// Why a mail did not go: `unsendable` will never go (given up at once), `refused` may go later (tried again).
enum MailFailure: Error, CustomStringConvertible {
    case unsendable(String)
    case refused(String)

    var description: String {
        switch self {
        case .unsendable(let why): "unsendable: \(why)"
        case .refused(let why): why
        }
    }
}

/// Hands a message to the system's `sendmail` interface (a local MTA, or `msmtp` relaying to the operator's SMTP
/// server with the credentials in its own configuration file): the message on standard input, the one recipient as
/// an argument after `--`, never read from the headers (`-t` is not used).
struct SendmailTransport: Sendable {
    let path: String
    /// A `sendmail` that hangs (a server that accepts and never answers) is stopped after this long and tried again later.
    var timeout: Duration = .seconds(60)

    func send(_ message: MailMessage) async throws(MailFailure) {
        let input = message.rendered()
        let path = self.path
        let arguments = ["-i", "-f", message.from.address, "--", message.to.address]
        let outcome: Result<(TerminationStatus, String), any Error> = await withTaskGroup(of: Result<(TerminationStatus, String), any Error>?.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        .path(FilePath(path)), arguments: Arguments(arguments), input: .string(input), output: .discarded,
                        error: .string(limit: 4096))
                    return .success((result.terminationStatus, result.standardError))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask { [timeout] in
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(MailFailure.refused("\(path) did not finish within \(timeout)"))
        }
        switch outcome {
        case .success((let status, _)) where status.isSuccess: return
        case .success((let status, let errorText)):
            let said = errorText.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            throw .refused("\(path) ended with \(status)\(said.isEmpty ? "" : ": \(said)")")
        case .failure(let error as MailFailure): throw error
        case .failure(let error): throw .refused("\(path) could not be run: \(error)")
        }
    }
}
