import Configuration
import FluentKit
import Foundation
import Hummingbird
@testable import LatchkeyCloud
import LatchkeyProtocol
import HummingbirdTesting
import Testing

/// E-mail notifications through a real SMTP server (aiosmtpd) behind Debian's `msmtp`, as an operator would set them up:
/// the owner is mailed a new request and both are mailed its outcome, each in their own language, with a link under
/// `--public-url`; a server that is down delays mails and loses none; a name cannot add a header.
@Suite("E-mail notifications", .timeLimit(.minutes(2)))
struct MailTests {
    static let publicURL = URL(string: "https://latchkey.example.com")!
    static let metricsToken = "operator-metrics-token-42"

    /// A platform that mails through a sink of its own, its SMTP server listening or (`serverUp: false`) not yet.
    func withMail(
        _ mode: TestingSetup = .router, serverUp: Bool = true,
        _ body: @escaping @Sendable (TestPlatform, MailDispatcher, MailSink) async throws -> Void
    ) async throws {
        let sink = try await MailSink()
        defer { sink.stop() }
        if serverUp { try await sink.start() }
        let sendmail = sink.sendmail
        try await TestPlatform.run(mode, configure: { configuration in
            configuration.mail = MailSettings(from: "latchkey@example.com", sendmail: sendmail, publicURL: Self.publicURL)
            // The tests send when they choose (`deliverDue`), not on the dispatcher's own schedule.
            configuration.mail?.interval = .seconds(3600)
            configuration.metricsToken = Self.metricsToken
        }) { app in
            try await body(app, try #require(app.platform.mail), sink)
        }
    }

    @Test func theOwnerIsMailedTheRequestAndBothTheOutcomeEachInTheirLanguage() async throws {
        try await withMail { app, mail, sink in
            let scene = try await app.resetScene(ownerLanguage: .it, installerLanguage: .en)
            #expect(scene.owner.account.language == .it)
            let request: API.PasswordReset = try await app.requestReset(scene, mode: .offSite).decode()
            #expect(try await mail.deliverDue() == 1)

            let asked = try #require(try sink.received().first)
            #expect(asked.rcptTos == [scene.owner.account.email])
            #expect(asked.defects.isEmpty, "\(asked.defects)")
            #expect(asked.header("To")?.contains("Laura Rossi") == true)
            #expect(asked.header("Subject") == "Latchkey: Ivan Installa chiede di reimpostare la password di DS-7608NI-K2 (\(scene.device.serial))")
            #expect(asked.header("Content-Language") == "it")
            #expect(asked.header("Auto-Submitted") == "auto-generated")
            let link = "https://latchkey.example.com/requests/\(request.id.uuidString.lowercased())"
            let text = try #require(asked.text)
            for fact in ["Ciao Laura Rossi,", "Ivan Installa (\(scene.installer.account.email)) chiede di reimpostare la password",
                         "Sito: Bar Centrale", "Modalità: Fuori sede", "Valida fino al: ", "Apri la richiesta: \(link)",
                         "dalla rete locale del dispositivo"] {
                #expect(text.contains(fact), "the text part says \(fact)")
            }
            let html = try #require(asked.html)
            #expect(html.contains("href=\"\(link)\""))
            #expect(html.contains("<html lang=\"it\">"))
            #expect(html.contains("Modalità"))

            // The owner declines: each is told in their own language.
            #expect(try await app.call(.post, "/api/v1/password-resets/\(request.id)/decline", token: scene.owner.token).status == .ok)
            #expect(try await mail.deliverDue() == 2)
            let outcome = try sink.received().dropFirst()
            let toOwner = try #require(outcome.first { $0.rcptTos == [scene.owner.account.email] })
            let toInstaller = try #require(outcome.first { $0.rcptTos == [scene.installer.account.email] })
            #expect(toOwner.header("Subject")?.hasPrefix("Latchkey: Reimpostazione password rifiutata") == true)
            #expect(toOwner.text?.contains("Hai rifiutato la reimpostazione della password") == true)
            #expect(toInstaller.header("Subject")?.hasPrefix("Latchkey: Password reset declined") == true)
            #expect(toInstaller.text?.contains("The owner declined the password reset of DS-7608NI-K2") == true)
            #expect(toInstaller.header("Content-Language") == "en")
            #expect(Set(outcome.compactMap { $0.header("Message-ID") }).count == 2, "each mail has its own Message-ID")
            #expect(try await app.platform.store.read { try await $0.mailQueue.counts() } == (0, 0))
        }
    }

    @Test func bothAreMailedThatThePasswordWasResetSuccessfully() async throws {
        try await withMail(.live) { app, mail, sink in
            let device = try await DeviceHarness.start(on: app)
            let scene = try #require(try await BoundDeviceScene.bind(device, on: app))
            let request = try await scene.approvedRequest(on: app, mode: .offSite)
            let grant: API.Grant = try await scene.grant(on: app, request, courier: scene.owner).decode()
            let receipt: ResetReceipt = try await device.local(.POST, "password-reset",
                                                               body: LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword)).decode()
            #expect(try await app.call(.post, "/api/v1/password-resets/\(request.id)/receipt", token: scene.owner.token,
                                       body: API.ReceiptDelivery(receipt: receipt)).status == .ok)
            while try await mail.deliverDue() > 0 {}
            let done = try sink.received().filter { $0.header("Subject")?.hasPrefix("Latchkey: Password reset successfully") == true }
            #expect(Set(done.flatMap(\.rcptTos)) == [scene.owner.account.email, scene.installer.account.email])
            #expect(done.allSatisfy { $0.text?.contains("was reset successfully") == true && $0.html != nil })
            await device.stop()
        }
    }

    @Test func aMailServerThatIsDownDelaysMailsAndLosesNone() async throws {
        try await withMail(serverUp: false) { app, mail, sink in
            let scene = try await app.resetScene()
            // Nobody listens: the request is answered all the same, and its mail waits.
            #expect(try await app.requestReset(scene).status == .created)
            #expect(try await mail.deliverDue() == 1)
            #expect(try await app.platform.store.read { try await $0.mailQueue.counts() } == (1, 0))
            #expect(try await mail.deliverDue() == 0, "not tried again before its time")
            let waiting = try await app.call(.get, "/metrics", token: Self.metricsToken).text
            #expect(waiting.contains("latchkey_mails_waiting 1"))
            #expect(waiting.contains("latchkey_mail_attempts_failed_total 1"))

            try await sink.start()
            #expect(try await mail.deliverDue() == 0, "still waiting its minute")
            app.clock.advance(by: 61)
            #expect(try await mail.deliverDue() == 1)
            let received = try sink.received()
            #expect(received.count == 1)
            #expect(received.first?.rcptTos == [scene.owner.account.email])
            #expect(try await app.platform.store.read { try await $0.mailQueue.counts() } == (0, 0))
            app.clock.advance(by: 3600)
            #expect(try await mail.deliverDue() == 0, "sent once, never again")
            let sent = try await app.call(.get, "/metrics", token: Self.metricsToken).text
            #expect(sent.contains("latchkey_mails_waiting 0"))
            #expect(sent.contains("latchkey_mails_sent_total 1"))
        }
    }

    @Test func aMailRefusedForThreeDaysIsGivenUpAndKeptForTheOperator() async throws {
        try await withMail(serverUp: false) { app, mail, _ in
            #expect(try await app.requestReset(try await app.resetScene()).status == .created)
            // Tried every six hours (each wait is an hour at most) for just over three days.
            for _ in 0..<14 {
                try await mail.deliverDue()
                app.clock.advance(by: 6 * 3600)
            }
            #expect(try await app.platform.store.read { try await $0.mailQueue.counts() } == (0, 1))
            let metrics = try await app.call(.get, "/metrics", token: Self.metricsToken).text
            #expect(metrics.contains("latchkey_mails_given_up_total 1"))
            #expect(metrics.contains("latchkey_mails_failed 1"))
        }
    }

    @Test func aNameWithANewlineAddsNoHeaderAndNoRecipient() async throws {
        try await withMail { app, mail, sink in
            let scene = try await app.resetScene()
            let hostile = "Ivan\r\nBcc: thief@evil.example\r\nX-Injected: yes"
            // The API refuses such a name; one that reached the database another way must still not add a header.
            #expect(try await app.call(.post, "/api/v1/accounts", body: API.SignUp(
                email: "x@example.com", password: "correct horse 1", name: hostile, role: .installer)).status == .badRequest)
            for person in [scene.installer, scene.owner] {
                try await AccountModel.query(on: app.platform.database).filter(\.$id == person.id).set(\.$name, to: hostile).update()
            }
            #expect(try await app.requestReset(scene).status == .created)
            #expect(try await mail.deliverDue() == 1)
            let received = try #require(try sink.received().first)
            #expect(received.rcptTos == [scene.owner.account.email])
            #expect(!received.headerNames.contains { ["bcc", "x-injected"].contains($0.lowercased()) }, "\(received.headerNames)")
            #expect(received.header("Subject")?.contains("Ivan Bcc: thief@evil.example X-Injected: yes") == true)
            // The name is shown (quoted by the reader, for its colon), on the one line of the one recipient.
            #expect(received.header("To") == "\"Ivan Bcc: thief@evil.example X-Injected: yes\" <\(scene.owner.account.email)>")
            #expect(received.defects.isEmpty)
        }
    }

    @Test func namesInTheHTMLPartAreTextNotMarkup() async throws {
        try await withMail { app, mail, sink in
            let scene = try await app.resetScene()
            try await SiteModel.query(on: app.platform.database).filter(\.$id == scene.site.id)
                .set(\.$name, to: "Bar <img src=x onerror=alert(1)>").update()
            #expect(try await app.requestReset(scene).status == .created)
            #expect(try await mail.deliverDue() == 1)
            let html = try #require(try sink.received().first?.html)
            #expect(html.contains("Bar &lt;img src=x onerror=alert(1)&gt;"))
            #expect(!html.contains("<img"))
        }
    }

    @Test func mailNeedsAPublicURLAndARealSendmail() throws {
        func problems(_ values: [String: String]) -> [String] {
            var pairs: [AbsoluteConfigKey: ConfigValue] = [:]
            for (key, value) in values { pairs[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(.string(value), isSecret: false) }
            do {
                _ = try LatchkeyConfiguration(reader: ConfigReader(providers: [InMemoryProvider(name: "test", values: pairs)]))
                return []
            } catch let error as ConfigurationError { return error.problems } catch { return ["\(error)"] }
        }
        #expect(problems(["mail.from": "latchkey@example.com", "sendmail": "/bin/true"]).contains { $0.contains("--public-url") })
        #expect(problems(["mail.from": "latchkey@example.com", "sendmail": "/nonexistent/sendmail", "public.url": "https://l.example.com"])
            .contains { $0.contains("is not an executable") })
        #expect(problems(["mail.from": "latchkey@example.com\nBcc: x@y.z", "sendmail": "/bin/true", "public.url": "https://l.example.com"])
            .contains { $0.contains("is not an e-mail address") })
        #expect(problems(["mail.from": "latchkey@example.com", "sendmail": "/bin/true", "public.url": "https://l.example.com"]) == [])
    }

    @Test func theAccountsLanguageIsChosenAtSignUpAndFollowsThePortalsAtSignIn() async throws {
        try await TestPlatform.run { app in
            let italian = try await app.signUp(.owner, language: .it)
            #expect(italian.account.language == .it)
            let unsaid = try await app.signUp(.owner)
            #expect(unsaid.account.language == .en, "no language and no Accept-Language: English")
            // Signing in to the portal in Italian makes the account's e-mails Italian.
            let form = "email=\(unsaid.account.email.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&password=correct+horse+1"
            var headers = HTTPFields()
            headers[.contentType] = "application/x-www-form-urlencoded"
            headers[.cookie] = "lk_lang=it; lk_csrf=\(String(repeating: "c", count: 32))"
            _ = try await app.client.execute(uri: "/signin", method: .post, headers: headers,
                                             body: ByteBuffer(string: form + "&csrf=" + String(repeating: "c", count: 32))) { $0.status }
            let stored = try await app.platform.store.read { try await $0.accounts.find(id: unsaid.id) }
            #expect(stored?.language == .it)
        }
    }
}
