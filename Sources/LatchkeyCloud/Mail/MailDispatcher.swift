import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// How the operator has the service send e-mail (`--mail-from`, `--sendmail`, `--public-url`).
public struct MailSettings: Sendable {
    /// The sender's address, also the envelope sender bounces return to.
    public var from: String
    /// The `sendmail` interface: a local MTA's, or `msmtp`'s (which reads the SMTP server and its credentials from its
    /// own configuration file, never from our command line).
    public var sendmail: String
    /// Where people reach the portal: the links in mails start with it.
    public var publicURL: URL
    public var retry = MailRetryPolicy()
    /// How often each node looks for mails due.
    public var interval: Duration = .seconds(2)

    public init(from: String, sendmail: String = "/usr/sbin/sendmail", publicURL: URL) {
        self.from = from
        self.sendmail = sendmail
        self.publicURL = publicURL
    }
}

/// Sends the queued e-mails, beside the HTTP server on every node. A request never waits for it: the reset step
/// queued its mails in its own transaction and returned. A mail that fails is tried again later (`MailRetryPolicy`),
/// and a node that dies while sending lets its mails go when their lease ends, so none is lost; a crash between
/// `sendmail` accepting a mail and the queue forgetting it sends that one twice, with the same Message-ID.
public struct MailDispatcher: Service {
    let store: any LatchkeyStore
    let clock: LatchkeyClock
    let composer: ResetMailComposer
    let transport: SendmailTransport
    let settings: MailSettings
    let logger: Logger
    let sent: Counter
    let failedAttempts: Counter
    let givenUp: Counter
    static let batch = 10
    /// Longer than a batch can take (ten mails, each stopped after the transport's timeout).
    static let lease: TimeInterval = 15 * 60

    init(store: any LatchkeyStore, clock: LatchkeyClock, settings: MailSettings, metrics: any MetricsFactory, logger: Logger) async throws {
        guard let from = MailAddress(settings.from, name: "Latchkey") else {
            throw ConfigurationError(problems: ["mail-from '\(settings.from)' is not an e-mail address."])
        }
        self.store = store
        self.clock = clock
        self.settings = settings
        self.composer = try await ResetMailComposer.bundled(from: from, publicURL: settings.publicURL)
        self.transport = SendmailTransport(path: settings.sendmail)
        self.logger = logger
        sent = Counter(label: "latchkey_mails_sent_total", factory: metrics)
        failedAttempts = Counter(label: "latchkey_mail_attempts_failed_total", factory: metrics)
        givenUp = Counter(label: "latchkey_mails_given_up_total", factory: metrics)
    }

    public func run() async {
        await Periodic(interval: settings.interval, logger: logger, failure: "Sending queued e-mails failed") {
            while try await deliverDue() == Self.batch {}
        }.run()
    }

    /// Claims the mails due now and tries each once; returns how many it claimed.
    @discardableResult
    public func deliverDue() async throws -> Int {
        let now = clock.now()
        let due = try await store.transaction { try await $0.mailQueue.claimDue(at: now, leaseUntil: now + Self.lease, limit: Self.batch) }
        for mail in due {
            do throws(MailFailure) {
                try await transport.send(try composer.message(for: mail, at: clock.now()))
            } catch {
                failedAttempts.increment()
                try await failed(mail, error)
                continue
            }
            try await store.transaction { try await $0.mailQueue.sent(id: mail.id) }
            sent.increment()
        }
        return due.count
    }

    private func failed(_ mail: QueuedMail, _ error: MailFailure) async throws {
        let now = clock.now()
        var metadata: Logger.Metadata = ["mail": "\(mail.id)", "attempts": "\(mail.attempts)", "error": "\(error)"]
        if case .refused = error, now.timeIntervalSince(mail.queuedAt) < settings.retry.giveUpAfter {
            let next = now + settings.retry.delay(afterAttempts: mail.attempts)
            metadata["next"] = "\(next)"
            logger.warning("An e-mail could not be sent; it will be tried again", metadata: metadata)
            try await store.transaction { try await $0.mailQueue.retry(id: mail.id, at: next, error: error.description) }
        } else {
            givenUp.increment()
            logger.error("An e-mail was given up", metadata: metadata)
            try await store.transaction { try await $0.mailQueue.giveUp(id: mail.id, error: error.description) }
        }
    }
}
