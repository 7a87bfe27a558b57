import Foundation
import Hummingbird
@testable import LatchkeyCloud
import LatchkeyProtocol
import Mustache
import Testing

@Suite("Web portal", .timeLimit(.minutes(3)))
struct PortalTests {
    @Test func bothCataloguesHaveEveryKeyAndEveryTemplateKeyExists() throws {
        let catalog = try PortalCatalog.bundled()
        #expect(catalog.missingKeys == [])
        let templates = try #require(PortalCatalog.templatesDirectory)
        var used = Set<String>()
        for file in try FileManager.default.contentsOfDirectory(at: templates, includingPropertiesForKeys: nil) {
            let text = try String(contentsOf: file, encoding: .utf8)
            let pattern = /\{\{t\.([a-z_]+)\}\}/
            for match in text.matches(of: pattern) { used.insert(String(match.1)) }
        }
        #expect(!used.isEmpty)
        for language in Language.allCases {
            let missing = used.filter { catalog.strings[language]?[$0] == nil }.sorted()
            #expect(missing == [], "\(language.rawValue) lacks \(missing)")
        }
        // Every stable error code has a message for people, in both languages.
        for code in APIErrorCode.allCases {
            for language in Language.allCases {
                #expect(catalog.strings[language]?["error_\(code.rawValue)"] != nil, "error_\(code.rawValue) in \(language.rawValue)")
            }
        }
    }

    /// Every template, in each language, with its texts written in at start reads exactly as it did looking each text up
    /// while rendering: signed out, and signed in as either role, with a text that needs escaping among them.
    @Test func templatesWithTheirTextsWrittenInRenderAsTheLookupsDid() throws {
        let directory = try #require(PortalCatalog.templatesDirectory)
        var catalog = try PortalCatalog.bundled().strings
        catalog[.it]?["nav_sites"] = #"Siti <"tutti"> & 'altri'"#
        let looked = try MustacheLibrary(templates: Dictionary(uniqueKeysWithValues: FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".mustache") }
            .map { (String($0.dropLast(".mustache".count)), try MustacheTemplate(string: String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8))) }))
        let written = try TranslatedTemplates.templates(from: directory, catalog: PortalCatalog(strings: catalog)).mapValues(MustacheLibrary.init(templates:))
        let users: [[String: Any]?] = [nil, ["name": "Giulia", "is_owner": true, "is_installer": false], ["name": "Marco", "is_owner": false, "is_installer": true]]
        var compared = 0
        for language in Language.allCases {
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".mustache") {
                let template = String(name.dropLast(".mustache".count))
                for user in users {
                    var context: [String: Any] = ["lang": language.rawValue, "csrf": "c"]
                    context["user"] = user
                    let expected = try #require(looked.render(context.merging(["t": catalog[language] ?? [:]]) { $1 }, withTemplate: template))
                    #expect(written[language]?.render(context, withTemplate: template) == expected, "\(template) in \(language.rawValue)")
                    compared += 1
                }
            }
        }
        #expect(compared > 30)
        #expect(written[.it]?.render(["user": users[1]!], withTemplate: "layout")?.contains("Siti &lt;&quot;tutti&quot;&gt; &amp; &#39;altri&#39;") == true)
    }

    /// The portal's own renderer (`PortalTemplate`) writes what swift-mustache writes, byte for byte: first for the forms
    /// its rules turn on (sections over lists, flags, rows, dictionaries, structs, text and nothing; inverted sections;
    /// dotted and current-only names and `.`; indented partials; blocks overridden through two levels of layouts;
    /// escaping), then for every portal template in each language, with its page's rows.
    @Test func compiledTemplatesRenderAsSwiftMustacheDoes() throws {
        struct Plain { let label: String; let note: String?; let count: Int }
        let device = DeviceRow(serial: "NVR-<1>", model: "DS-7608", firmware: "V4.62", type_label: "NVR", online: true,
                               compatible: false, reason: "troppo \"vecchio\" & 'basta'", history_link: true, own_reset: true)
        let sources: [String: String] = [
            "page": """
                <h1>{{title}}</h1> {{missing}}{{count}}{{flag}}{{plain.label}}{{plain.note}}{{#plain}}[{{label}}/{{count}}/{{note}}]{{/plain}}
                {{#rows}}
                  <tr>{{serial}} {{title}} {{#online}}on{{/online}}{{^compatible}}{{reason}}{{/compatible}} {{.serial}}|{{.title}}|</tr>
                {{/rows}}
                {{^rows}}none{{/rows}}{{^empty}}empty: {{.}}{{/empty}}{{#empty}}never{{/empty}}
                {{#user}}{{name}} {{#is_owner}}owner {{csrf}}{{/is_owner}}{{/user}}{{^user}}signed out{{/user}}
                {{#user.is_owner}}dotted{{/user.is_owner}} {{#next}}<a href="{{.}}">{{title}}</a>{{/next}}{{^nothing}}nil{{/nothing}}
                  {{>row}}
                {{>row}} inline {{>row}}
                """,
            "row": "<p>\n  {{title}}\n</p>\n",
            "layout": "<html>\n{{$head}}<title>{{title}}</title>{{/head}}\n<main>\n  {{$content}}default{{/content}}\n</main>\n</html>\n",
            "middle": "{{<layout}}\n{{$content}}middle {{title}}{{/content}}\n{{$head}}<meta>{{/head}}\n{{/layout}}\n",
            "leaf": "{{<middle}}\n{{$content}}\n    leaf {{#rows}}{{serial}},{{/rows}}\n  {{>row}}\n{{/content}}\n{{/middle}}\n",
        ]
        let templates = try sources.mapValues(PortalHTML.template)
        let reference = MustacheLibrary(templates: templates)
        let compiled = try PortalTemplate.library(templates)
        let contexts: [Any] = [
            PortalPageContext(language: .it, csrf: "c&c", user: PortalUser(name: "Giulia <G>", role: .owner),
                              page: ErrorPage(code: "c", message: "m", back: "/", open_request: nil)),
            ["title": "Bar \"Centrale\" <1> & 'co'", "count": 3, "flag": false, "rows": [device, device], "empty": [String](),
             "plain": Plain(label: "x<y", note: nil, count: 2), "next": "/sites?cursor=a&b", "csrf": "k",
             "user": ["name": "Marco", "is_owner": false]] as [String: Any],
            ["title": "", "rows": [DeviceRow](), "plain": Plain(label: "", note: "nota", count: 0), "empty": ["a"]] as [String: Any],
        ]
        for context in contexts {
            let value = try #require(PortalValue(reflecting: context))
            for name in sources.keys.sorted() {
                let expected = try #require(reference.render(value.mustache, withTemplate: name))
                let written = try #require(PortalTemplate.render(value, template: name, library: compiled))
                #expect(String(decoding: written, as: UTF8.self) == expected, "\(name)")
                if !(context is PortalPageContext) {
                    // The values read from a model as swift-mustache reads the model itself.
                    #expect(reference.render(context, withTemplate: name) == expected, "\(name), as read")
                }
            }
        }

        // Every portal template, each language, signed out and as either role, with rows on the pages that list them.
        let directory = try #require(PortalCatalog.templatesDirectory)
        let renderer = try PortalRenderer(translated: try TranslatedTemplates.templates(from: directory, catalog: PortalCatalog.bundled()),
                                          catalog: PortalCatalog.bundled())
        let request = RequestRow(id: "r1", device_serial: "NVR-1", status: "pending", status_label: "In attesa", mode_label: "Sul posto",
                                 time_left: "4:59", expires_at: "2026-11-26T11:04:03Z", open: true, live: true, cancellable: true)
        let approval = ApprovalForms(can_approve: true, can_deliver: true, agreement_key: "k", owner_carries: false, where_to_read: "qui")
        let pages: [any PortalPage] = [
            SitePage(site_id: "s1", site_name: "Bar <Centrale>", devices: [device], has_devices: true, next_page: "/sites/s1?cursor=x",
                     authorizations: [AuthorizationRow(installer_id: "i1", installer_name: "Marco", installer_email: "m@example.com",
                                                       site_id: "s1", permissions: "view", until: "—")]),
            SitesPage(sites: [SiteRow(id: "s1", name: "Bar", address: "Via Roma 1", owned: true, devices: [device], has_devices: true,
                                      more_devices: "/sites/s1")], next_page: "/sites?cursor=y"),
            RequestsPage(requests: [request], has_requests: true, next_page: nil),
            NotificationsPage(notifications: [NotificationRow(id: "n1", title: "Reset", request_id: "r1", created_at: "ora",
                                                              created_at_iso: "2026-11-26T10:59:03Z", read: false, about: nil)],
                              services_tab: true, next_page: "/notifications?cursor=w"),
            RequestPage(row: request, heading: "Richiesta", device_model: "DS", offsite_pending: false, onsite_open: true, onsite_pending: true,
                        approved_onsite: false, lan_note: true, confirmation: "", countdown_ask: "chiedi", approved_next: "poi",
                        approval: approval),
            NotificationPage(row: request, title: "Reset", device_model: "DS", site_name: "Bar", installer_name: "Marco", pending: true,
                             how_to: "così", approval: approval),
            ResetPage(sites: [SiteChoice(id: "s1", name: "Bar", selected: true)], site_chosen: true, devices: [device], next_page: nil),
            ErrorPage(code: "not_found", message: "Non c'è", back: "/", open_request: nil),
        ]
        let users: [PortalUser?] = [nil, PortalUser(name: "Giulia", role: .owner), PortalUser(name: "Marco", role: .installer)]
        var compared = 0
        for language in Language.allCases {
            let library = try #require(renderer.templates[language])
            for user in users {
                for page in pages {
                    let context = PortalValue.object(PortalPageContext(language: language, csrf: "c", user: user, page: page))
                    let template = type(of: page).template
                    let expected = try #require(renderer.reference[language]?.render(context.mustache, withTemplate: template))
                    let written = try #require(PortalTemplate.render(context, template: template, library: library))
                    #expect(String(decoding: written, as: UTF8.self) == expected, "\(template) in \(language.rawValue)")
                    compared += 1
                }
                for template in library.keys {
                    let context = PortalValue.object(PortalPageContext(
                        language: language, csrf: "c", user: user, page: ErrorPage(code: "x", message: "y", back: "/", open_request: "/r")))
                    let expected = try #require(renderer.reference[language]?.render(context.mustache, withTemplate: template))
                    #expect(PortalTemplate.render(context, template: template, library: library).map { String(decoding: $0, as: UTF8.self) }
                            == expected, "\(template) in \(language.rawValue)")
                    compared += 1
                }
            }
        }
        #expect(compared > 100)
    }

    /// A form the portal's renderer does not render as swift-mustache would stops the service at start, naming the
    /// template; so does a partial no template defines (swift-mustache writes nothing for it: a page would lose a part
    /// unseen), and one that calls itself.
    @Test(arguments: ["{{{raw}}}", "{{&raw}}", "{{uppercased(name)}}", "{{>*dynamic}}", "{{>nowhere}}", "a{{#rows}}{{>page}}{{/rows}}"])
    func aFormThePortalDoesNotRenderIsRefusedAtStart(source: String) throws {
        #expect(throws: TemplateTextError.self) { try PortalTemplate.library(["page": try PortalHTML.template(source)]) }
    }

    /// What cannot be written in as it was looked up stops the service at start, naming the template, instead of
    /// rendering something else.
    @Test(arguments: [("{{{t.app_name}}}", ["app_name": "Latchkey"]), ("{{#t.app_name}}x{{/t.app_name}}", ["app_name": "Latchkey"]),
                      ("{{t.app name}}", ["app name": "Latchkey"]), ("{{t.app_name}}", ["app_name": "{{user}}"])])
    func aTextThatCannotBeWrittenInIsRefused(source: String, texts: [String: String]) {
        #expect(throws: TemplateTextError.self) { try TranslatedTemplates.translated(source, texts, in: "page.mustache") }
    }

    /// A page model reads as tables of values: text, flags and numbers as they are, an optional as its value or not at
    /// all (so `{{#x}}` hides its section), rows element by element, a row that answers its names itself kept as it is.
    @Test func aPageModelReadsAsTablesOfValues() throws {
        struct Row { let name: String; let note: String?; let gone: String?; let on: Bool; let count: Int; let flag: Bool? }
        struct Model { let title: String; let rows: [Row]; let more: String?; let devices: [DeviceRow]; let tags: [String] }
        let device = DeviceRow(serial: "NVR-1", model: "", firmware: "", type_label: "", online: true, compatible: true, reason: "",
                               history_link: false, own_reset: false)
        let value = PortalValue(reflecting: Model(
            title: "Bar <Centrale>", rows: [Row(name: "NVR", note: "nota", gone: nil, on: true, count: 3, flag: false)], more: nil,
            devices: [device], tags: ["a", "b"]))
        #expect(Self.shape(value) == "{devices: [DeviceRow], rows: [{count: number(3), flag: flag(false), name: text(NVR), "
            + "note: text(nota), on: flag(true)}], tags: [text(a), text(b)], title: text(Bar <Centrale>)}")
        #expect(Self.shape(PortalValue(reflecting: String?.none as Any)) == "nil")
    }

    /// A value's cases and, for a table, its names: what `PortalValue(reflecting:)` made of a model.
    static func shape(_ value: PortalValue?) -> String {
        switch value {
        case nil: "nil"
        case .text(let text)?: "text(\(text))"
        case .flag(let flag)?: "flag(\(flag))"
        case .number(let number)?: "number(\(number))"
        case .list(let values)?: "[" + values.map(shape).joined(separator: ", ") + "]"
        case .object(let table as [String: PortalValue])?: "{" + table.keys.sorted().map { "\($0): \(shape(table[$0]))" }.joined(separator: ", ") + "}"
        case .object(let object)?: "\(type(of: object))"
        }
    }

    /// The rows that answer their template's lookups themselves answer every field they have, as reflecting over them
    /// read it: the value, an optional's value, or missing when it holds nothing.
    @Test func rowsAnswerEveryFieldTheyHave() throws {
        let device = DeviceRow(serial: "NVR-1", model: "DS-7608NI-K2", firmware: "V4.62.200", type_label: "NVR", online: true,
                               compatible: false, reason: "too old", history_link: true, own_reset: false)
        let request = RequestRow(id: "r1", device_serial: "NVR-1", status: "pending", status_label: "Waiting", mode_label: "On-site",
                                 time_left: "4:59", expires_at: "2026-11-26T11:04:03Z", open: true, live: true, cancellable: true)
        let rows: [any PortalObject] = [
            device,
            SiteRow(id: "s1", name: "Bar Centrale", address: "Via Roma 1", owned: true, devices: [device], has_devices: true,
                    more_devices: "/sites/s1"),
            SiteRow(id: "s2", name: "Negozio", address: "", owned: false, devices: [], has_devices: false, more_devices: nil),
            AuthorizationRow(installer_id: "i1", installer_name: "Marco", installer_email: "marco@example.com", site_id: "s1",
                             permissions: "view", until: "—"),
            SitePage(site_id: "s1", site_name: "Bar Centrale", devices: [device], has_devices: true, next_page: "/sites/s1?cursor=x",
                     authorizations: []),
            SitePage(site_id: "s1", site_name: "Bar Centrale", devices: [], has_devices: false, next_page: nil, authorizations: []),
            SitesPage(sites: [], next_page: nil),
            SitesPage(sites: [], next_page: "/sites?cursor=y"),
            request,
            RequestRow(id: "r2", device_serial: "IPC-2", status: "completed", status_label: "Completed", mode_label: "Off-site",
                       time_left: "", expires_at: "", open: false, live: false, cancellable: false),
            RequestsPage(requests: [request], has_requests: true, next_page: "/requests?cursor=z"),
            RequestsPage(requests: [], has_requests: false, next_page: nil),
            NotificationRow(id: "n1", title: "Reset asked", request_id: "r1", created_at: "26/11/2026 10:59 UTC",
                            created_at_iso: "2026-11-26T10:59:03Z", read: false, about: "NVR-1"),
            NotificationRow(id: "n2", title: "Done", request_id: nil, created_at: "", created_at_iso: "", read: true, about: nil),
            NotificationsPage(notifications: [], services_tab: true, next_page: "/notifications?cursor=w"),
            NotificationsPage(notifications: [], services_tab: false, next_page: nil),
        ]
        for row in rows {
            // What the page model read as a table of values gives: each field as `PortalValue(reflecting:)` reads it.
            var reflected: [String: PortalValue] = [:]
            for child in Mirror(reflecting: row).children { reflected[child.label!] = PortalValue(reflecting: child.value) }
            for child in Mirror(reflecting: row).children {
                let label = try #require(child.label)
                // As a value, escaped and not, and as a section either way round.
                let template = try MustacheTemplate(string: "{{\(label)}}|{{{\(label)}}}|{{#\(label)}}yes{{/\(label)}}{{^\(label)}}no{{/\(label)}}")
                #expect(template.render(PortalValue.object(row).mustache) == template.render(PortalValue.object(reflected).mustache),
                        "\(type(of: row)).\(label)")
            }
            #expect(row.value(named: "no_such_field") == nil)
        }
        #expect(try MustacheTemplate(string: "{{serial}}").render(PortalValue.object(DeviceRow(
            serial: "<b>\"x\"</b>", model: "", firmware: "", type_label: "", online: true, compatible: true, reason: "", history_link: false,
            own_reset: false)).mustache) == "&lt;b&gt;&quot;x&quot;&lt;/b&gt;", "a row's text is escaped")
    }

    /// The fixed-pattern times read the same as Foundation's formatters wrote them, across years, leap days and the
    /// last second of a minute (a fraction of a second never rounds up). Random times are whole milliseconds: ICU, under
    /// DateFormatter, rounds a time to the millisecond first, so 59.9996 s reads as the next minute there (a moment not
    /// yet reached, which UTCTime never shows).
    @Test func timesReadAsTheFormattersWroteThem() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_709_164_799.999), Date(timeIntervalSince1970: 1_795_000_000.5)]
        dates += (0..<200).map { _ in Date(timeIntervalSince1970: Double(Int64.random(in: 0..<4_102_444_800_000)) / 1000) }
        for date in dates {
            formatter.dateFormat = "dd/MM/yyyy HH:mm 'UTC'"
            #expect(PortalCatalog.time(date, .it) == formatter.string(from: date))
            formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
            #expect(PortalCatalog.time(date, .en) == formatter.string(from: date))
            // Whole seconds, floored (ISO8601DateFormatter rounds 35.5 s up to 36: a moment not yet reached).
            #expect(PortalPages.iso(date) == ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))))
        }
    }

    @Test func languageFollowsAcceptLanguageAndTheSwitch() async throws {
        try await TestPlatform.run { app in
            let italian = try await app.client.execute(uri: "/signin", method: .get, headers: [.acceptLanguage: "it-IT,it;q=0.9,en;q=0.5"]) { $0 }
            #expect(String(buffer: italian.body).contains("Accedi a Latchkey"))
            let english = try await app.client.execute(uri: "/signin", method: .get, headers: [.acceptLanguage: "en-GB"]) { $0 }
            #expect(String(buffer: english.body).contains("Sign in to Latchkey"))
            let switched = try await app.client.execute(uri: "/signin?lang=it", method: .get, headers: [.acceptLanguage: "en"]) { $0 }
            #expect(String(buffer: switched.body).contains("Accedi a Latchkey"))
            #expect(switched.headers[values: .setCookie].contains { $0.hasPrefix("lk_lang=it") })
        }
    }

    /// An e-mail's link to a request, opened signed out, comes back to that request after signing in; and the return
    /// path cannot send anyone to another site.
    @Test func aLinkOpenedSignedOutReturnsToItsPageAfterSignIn() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            let request: API.PasswordReset = try await app.requestReset(scene).decode()
            let path = "/requests/\(request.id.uuidString.lowercased())"
            let away = try await app.client.execute(uri: path, method: .get) { $0 }
            #expect(away.status == .seeOther)
            let location = try #require(away.headers[.location])
            #expect(location == "/signin?next=%2Frequests%2F\(request.id.uuidString.lowercased())")
            let page = try await app.client.execute(uri: location, method: .get) { String(buffer: $0.body) }
            #expect(page.contains("name=\"next\" value=\"\(path)\""))

            let csrf = String(repeating: "c", count: 43)
            func signIn(next: String) async throws -> String? {
                let form = "email=\(scene.owner.account.email.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                    + "&password=correct+horse+1&csrf=\(csrf)&next=\(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                return try await app.client.execute(
                    uri: "/signin", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "lk_csrf=\(csrf)"],
                    body: ByteBuffer(string: form)) { $0.headers[.location] }
            }
            #expect(try await signIn(next: path) == path)
            for elsewhere in ["//evil.example/requests", "https://evil.example", "/\\evil.example", "requests"] {
                #expect(try await signIn(next: elsewhere) == "/", "\(elsewhere) must not be followed")
            }
        }
    }

    @Test func formsWithoutTheirCSRFTokenAreRefused() async throws {
        try await TestPlatform.run { app in
            let answer = try await app.client.execute(
                uri: "/signin", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "lk_csrf=\(String(repeating: "a", count: 43))"],
                body: ByteBuffer(string: "email=a%40b.it&password=whatever1&csrf=forged")) { $0 }
            #expect(answer.status == .forbidden)
            #expect(String(buffer: answer.body).contains("error"))
        }
    }

    @Test func errorsArePagesWithTheRealStatus() async throws {
        try await TestPlatform.run { app in
            let missing = try await app.client.execute(uri: "/no-such-page", method: .get, headers: [.acceptLanguage: "it"]) { $0 }
            #expect(missing.status == .notFound)
            #expect(String(buffer: missing.body).contains("Questa pagina o questo elemento non esiste"))
            let api = try await app.call(.get, "/api/v1/no-such-thing")
            #expect(api.errorCode == .notFound)
            let signedOut = try await app.client.execute(uri: "/sites", method: .get) { $0 }
            #expect(signedOut.status == .seeOther)
            #expect(signedOut.headers[.location] == "/signin?next=%2Fsites")
            let compatibility = try await app.client.execute(uri: "/compatibility?model=7608", method: .get) { $0 }
            #expect(String(buffer: compatibility.body).contains("DS-7608NI-K2"))
            #expect(!String(buffer: compatibility.body).contains("DS-KV6113"))
        }
    }

    /// A quote with a combining mark on it is one Character to Swift, and swift-mustache's escaping, which looks each
    /// Character up, let it through: a search typed into the compatibility page closed the `value="…"` it is shown in
    /// and wrote attributes of its own onto the field. Every `{{value}}` is escaped byte by byte now.
    @Test func aQuoteWithAMarkOnItStaysInsideItsAttribute() async throws {
        try await TestPlatform.run { app in
            // "́ autofocus data-x="
            let page = try await app.client.execute(uri: "/compatibility?model=%22%CC%81%20autofocus%20data-x%3D%22", method: .get) { $0 }
            let html = Data(String(buffer: page.body).utf8)
            #expect(html.range(of: Data("\"\u{301} autofocus".utf8)) == nil, "the quote ended the attribute")
            #expect(html.range(of: Data("value=\"&quot;\u{301} autofocus data-x=&quot;\"".utf8)) != nil)
        }
        for (raw, escaped) in [("\"\u{301}", "&quot;\u{301}"), ("<\u{338}", "&lt;\u{338}"), (">\u{338}", "&gt;\u{338}"),
                               ("&\u{301}", "&amp;\u{301}"), ("'\u{301}", "&#39;\u{301}"), ("Città è <b>", "Città è &lt;b&gt;")] {
            #expect(PortalHTML().escapeText(raw).utf8.elementsEqual(escaped.utf8), "\(escaped)")
        }
    }

    /// Following a link never changes anything: a notification is marked read by the list's form (a POST), not by
    /// opening its page, which a prefetching browser or a mail scanner could do.
    @Test func aGetNeverMarksANotificationRead() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            try await app.requestReset(scene)
            let notice = try #require(try await app.notifications(of: scene.owner, category: "services").first)
            let csrf = String(repeating: "c", count: 43)
            let cookies = "lk_session=\(scene.owner.token); lk_csrf=\(csrf)"
            let page = try await app.client.execute(uri: "/notifications/\(notice.id)", method: .get, headers: [.cookie: cookies]) { $0 }
            #expect(page.status == .ok)
            #expect(try await app.notifications(of: scene.owner).first { $0.id == notice.id }?.read == false)

            let list = try await app.client.execute(uri: "/notifications", method: .get, headers: [.cookie: cookies]) { $0 }
            #expect(String(buffer: list.body).contains("action=\"/notifications/\(notice.id)/open\""))
            let opened = try await app.client.execute(
                uri: "/notifications/\(notice.id)/open", method: .post,
                headers: [.cookie: cookies, .contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "csrf=\(csrf)")) { $0 }
            #expect(opened.status == .seeOther)
            #expect(opened.headers[.location] == "/notifications/\(notice.id)")
            #expect(try await app.notifications(of: scene.owner).first { $0.id == notice.id }?.read == true)
        }
    }

    /// A device's history reads as sentences in the reader's language, and downloads as CSV and JSON.
    @Test func historyIsSentencesInTheReadersLanguageAndDownloads() async throws {
        try await TestPlatform.run { app in
            let scene = try await app.resetScene()
            try await app.requestReset(scene)
            let cookies = "lk_session=\(scene.owner.token)"
            let italian = try await app.client.execute(uri: "/devices/\(scene.device.serial)/history?lang=it", method: .get,
                                                       headers: [.cookie: cookies]) { $0 }
            #expect(String(buffer: italian.body).contains("Ivan Installa ha richiesto la reimpostazione (fuori sede)"))
            #expect(String(buffer: italian.body).contains("In attesa di approvazione"), "the outcome is in the reader's language too")
            let english = try await app.client.execute(uri: "/devices/\(scene.device.serial)/history?lang=en", method: .get,
                                                       headers: [.cookie: cookies]) { $0 }
            #expect(String(buffer: english.body).contains("Ivan Installa requested the password reset (off-site)"))
            let csv = try await app.client.execute(uri: "/devices/\(scene.device.serial)/history.csv", method: .get, headers: [.cookie: cookies]) { $0 }
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(String(buffer: csv.body).contains("reset.requested"))
            let foreign = try await app.client.execute(uri: "/devices/\(scene.device.serial)/history.json", method: .get,
                                                       headers: [.cookie: "lk_session=\(scene.installer.token)"]) { $0 }
            #expect(foreign.status == .notFound, "the installer does not read the owner's history")
        }
    }

    /// No inline script may run on a portal page, and no other site may frame it.
    @Test func pagesCarryAPolicyThatForbidsInlineScriptsAndFraming() async throws {
        try await TestPlatform.run { app in
            let page = try await app.client.execute(uri: "/signin", method: .get) { $0 }
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
            #expect(policy.contains("frame-ancestors 'none'"))
            #expect(page.headers[.xContentTypeOptions] == "nosniff")
            // And no template carries a script of its own.
            let templates = try #require(PortalCatalog.templatesDirectory)
            for file in try FileManager.default.contentsOfDirectory(at: templates, includingPropertiesForKeys: nil) {
                let text = try String(contentsOf: file, encoding: .utf8)
                for match in text.matches(of: /<script[^>]*>/) { #expect(match.output.contains("src="), "\(file.lastPathComponent)") }
            }
        }
    }
}
