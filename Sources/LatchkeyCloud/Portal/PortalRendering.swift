import HTTPTypes
import Foundation
import Hummingbird
import LatchkeyProtocol
import Logging
import Mustache

/// Renders portal pages: a template, the reader's catalogue, who is signed in, and the page's own values.
struct PortalRenderer: Sendable {
    /// The templates with each language's texts written in (`TranslatedTemplates`), read into the tree the portal
    /// renders (`PortalTemplate`).
    let templates: [Language: [String: PortalTemplate]]
    /// The same templates as swift-mustache renders them: debug builds render every page both ways and refuse a
    /// difference.
    let reference: [Language: MustacheLibrary]
    let catalog: PortalCatalog

    init(translated: [Language: [String: MustacheTemplate]], catalog: PortalCatalog) throws {
        templates = try translated.mapValues(PortalTemplate.library)
        reference = translated.mapValues(MustacheLibrary.init(templates:))
        self.catalog = catalog
    }

    static func bundled() async throws -> PortalRenderer {
        guard let directory = PortalCatalog.templatesDirectory else {
            throw LatchkeyError.notFound("The portal templates are missing.")
        }
        let catalog = try PortalCatalog.bundled()
        return try PortalRenderer(translated: try TranslatedTemplates.templates(from: directory, catalog: catalog), catalog: catalog)
    }

    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

    func render(_ page: some PortalPage, _ visit: PortalVisit, status: HTTPResponse.Status = .ok) -> Response {
        let context = PortalPageContext(language: visit.language, csrf: visit.csrf,
                                        user: visit.account.map { PortalUser(name: $0.name, role: $0.role) }, page: page)
        let template = type(of: page).template
        // A missing template is our failure, never a page that looks like content.
        guard let templates = templates[visit.language],
              let html = PortalTemplate.render(.object(context), template: template, library: templates)
        else {
            return Self.notRendered("A portal template is missing", template: template)
        }
        #if DEBUG
        if let expected = reference[visit.language]?.render(PortalValue.object(context).mustache, withTemplate: template),
           Array(expected.utf8) != html {
            return Self.notRendered("A portal page renders otherwise than swift-mustache renders it", template: template)
        }
        #endif
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        // Scripts and styles from the portal's own files only: an injected inline script does not run; no framing.
        headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        return visit.withCookies(Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: html))))
    }

    private static func notRendered(_ failure: Logger.Message, template: String) -> Response {
        Logger(label: "latchkey.portal").error(failure, metadata: ["template": "\(template)"])
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .internalServerError, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: "internal_error: the page could not be rendered.\n")))
    }

    /// The error as a page in the reader's language, with the status the API would answer (already classified, and
    /// for our own failures logged, by `ErrorAnswer`).
    func error(_ answer: ErrorAnswer, _ latchkey: LatchkeyError?, _ visit: PortalVisit, back: String) -> Response {
        let code = answer.body.error.code
        var parameters = ["detail": latchkey?.message ?? ""]
        if case .deviceNotCompatible(_, _, let minimum) = latchkey { parameters["minimum"] = minimum ?? "—" }
        let message = catalog.text("error_\(code.rawValue)", visit.language, parameters)
        var openRequest: String?
        if case .requestAlreadyOpen(_, let id?) = latchkey { openRequest = "/requests/\(id)" }
        return render(ErrorPage(code: code.rawValue, message: message, back: back, open_request: openRequest), visit,
                      status: answer.status)
    }

    func text(_ key: String, _ visit: PortalVisit, _ parameters: [String: String] = [:]) -> String {
        catalog.text(key, visit.language, parameters)
    }
}

/// The portal's templates with a language's texts in place of their `{{t.key}}`, one library per language, made once.
///
/// A text looked up at render time cost the most of any lookup: swift-mustache splits the name and tries each level of
/// the context, row first, with dynamic casts at each, and a table row holds eight of them (`perf` of the site page:
/// lookups were 28 % of its CPU and escaping 11 %). The texts are the same for every reader of a language, so they are
/// written in, escaped as every `{{…}}` is (`PortalHTML`), once at start.
enum TranslatedTemplates {
    static func templates(from directory: URL, catalog: PortalCatalog) throws -> [Language: [String: MustacheTemplate]] {
        let sources = try sources(in: directory)
        var templates: [Language: [String: MustacheTemplate]] = [:]
        for language in Language.allCases {
            templates[language] = try sources.mapValues { source in
                try PortalHTML.template(translated(source.text, catalog.strings[language] ?? [:], in: source.file))
            }
        }
        return templates
    }

    /// Each template's text by the name a page or a partial calls it.
    static func sources(in directory: URL) throws -> [String: (file: String, text: String)] {
        var sources: [String: (file: String, text: String)] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) where file.hasSuffix(".mustache") {
            sources[String(file.dropLast(".mustache".count))] = (file, try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8))
        }
        return sources
    }

    /// `source` with every `{{t.key}}` replaced by the key's text, escaped; a key the catalogue lacks reads as nothing,
    /// as a lookup of it did.
    static func translated(_ source: String, _ texts: [String: String], in name: String) throws -> String {
        // Only the plain form is written in; any other use of a text (unescaped, as a section) would silently change.
        for form in ["{{{t.", "{{&t.", "{{#t.", "{{^t.", "{{ t."] where source.contains(form) {
            throw TemplateTextError(template: name, problem: "write a text as {{t.key}}, not \(form)…")
        }
        var result = ""
        var rest = source[...]
        while let open = rest.range(of: "{{t.") {
            guard let close = rest[open.upperBound...].range(of: "}}") else { break }
            let key = rest[open.upperBound..<close.lowerBound]
            guard key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw TemplateTextError(template: name, problem: "'\(key)' is not a text's key")
            }
            result += rest[..<open.lowerBound]
            let text = (texts[String(key)] ?? "").htmlEscaped
            guard !text.contains("{{"), !text.contains("}}") else {
                throw TemplateTextError(template: name, problem: "the text of \(key) holds braces a template would read as a tag")
            }
            result += text
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}

/// How the portal and its e-mails escape every `{{value}}` for HTML: `String.htmlEscaped`, in place of swift-mustache's
/// own, which walks Characters (a quote with a combining mark passed unescaped) and was a tenth of a portal page's CPU.
struct PortalHTML: MustacheContentType {
    static let name = "LATCHKEY_HTML"
    static let registered: Void = MustacheContentTypes.register(PortalHTML(), named: name)

    func escapeText(_ text: String) -> String { text.htmlEscaped }

    /// The template, escaping its values this way: swift-mustache starts every template and partial on its own
    /// escaping, so each one is told (a line of its own, which renders as nothing).
    static func template(_ source: String) throws -> MustacheTemplate {
        _ = registered
        return try MustacheTemplate(string: "{{% CONTENT_TYPE: \(name) }}\n" + source)
    }
}

/// A template or a text that cannot be written in as it is: our failure, found as the service starts.
struct TemplateTextError: Error, CustomStringConvertible {
    let template: String
    let problem: String
    var description: String { "Portal template \(template): \(problem)." }
}

extension String {
    /// The text for HTML: the five characters that mean something in HTML text or a quoted attribute written as the
    /// entities swift-mustache writes, byte by byte. A quote with a combining mark after it is one `Character`, and a
    /// walk over Characters left it, and its attribute, open.
    var htmlEscaped: String {
        guard utf8.contains(where: { Self.htmlEntity($0) != nil }) else { return self }
        var escaped: [UInt8] = []
        escaped.reserveCapacity(utf8.count + 16)
        appendHTMLEscaped(to: &escaped)
        return String(decoding: escaped, as: UTF8.self)
    }

    /// Appends the text for HTML (as `htmlEscaped`) to `output`, the runs between entities copied whole.
    func appendHTMLEscaped(to output: inout [UInt8]) {
        var text = self
        text.withUTF8 { bytes in
            var plainFrom = 0
            for (index, byte) in bytes.enumerated() {
                guard let entity = Self.htmlEntity(byte) else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom..<index]))
                entity.withUTF8Buffer { output.append(contentsOf: $0) }
                plainFrom = index + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom...]))
        }
    }

    /// The entity a byte is written as in HTML, or nil when it is written as it is.
    private static func htmlEntity(_ byte: UInt8) -> StaticString? {
        switch byte {
        case UInt8(ascii: "<"): "&lt;"
        case UInt8(ascii: ">"): "&gt;"
        case UInt8(ascii: "&"): "&amp;"
        case UInt8(ascii: "\""): "&quot;"
        case UInt8(ascii: "'"): "&#39;"
        default: nil
        }
    }
}

/// The cookies a portal request carries, read from its `Cookie` headers once and as Hummingbird's `Cookies` reads them:
/// pieces split at `;`, leading whitespace dropped, the first piece of a name deciding, its value after the `=`s that
/// follow its name (an empty value reads as no cookie). Hummingbird made a `Cookie`, its attributes parsed into a
/// table, at every lookup, and a page looks up three (session, CSRF, language): with `Request.cookies` that was 5 % of
/// the CPU of the *Sito e dispositivo* page; read here by characters, 2.5 %; by bytes when ASCII, under 1 % (perf,
/// issue 13). `portalCookiesReadAsHummingbirdReadsThem` checks the two read every header alike.
struct PortalCookies: Sendable {
    /// Each piece, by its name: what comes before its first `=`.
    private var pieces: [(name: Substring, piece: Substring)] = []

    init(_ request: Request) {
        self.init(headers: request.headers[values: .cookie])
    }

    init(headers: [String]) {
        for header in headers {
            // In ASCII a character is a byte (or CR LF, neither `;` nor `=`, and whitespace either way): read as bytes,
            // without breaking the text into characters. Beyond ASCII, characters are what Hummingbird splits and
            // compares (a combining mark joins the `;` or `=` before it, canonically equivalent names are equal).
            let header = Substring(header)
            if Self.isASCII(header) {
                pieces += Self.pieces(of: header.utf8).map { (Substring($0.name), Substring($0.piece)) }
            } else {
                pieces += Self.pieces(of: header)
            }
        }
    }

    subscript(_ name: String) -> String? {
        guard let piece = pieces.first(where: { $0.name == name })?.piece else { return nil }
        if Self.isASCII(piece) { return Self.value(in: piece.utf8).map { String(Substring($0)) } }
        return Self.value(in: piece).map(String.init)
    }

    private static func isASCII(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { $0 < 0x80 }
    }

    /// A header's pieces, split at `;`, leading whitespace dropped, each with its name: what comes before its first `=`.
    private static func pieces<Text: Collection>(of header: Text) -> [(name: Text, piece: Text)]
        where Text.SubSequence == Text, Text.Element: CookieSyntax
    {
        header.split(separator: .semicolon).compactMap { piece in
            let piece = piece.drop { $0.isWhitespace }
            return piece.firstIndex(of: .equals).map { (piece[..<$0], piece) }
        }
    }

    /// As `Cookie(from:)` reads a piece: `=`s first skipped, a name, the `=`s after it, the value (none if empty).
    private static func value<Text: Collection>(in piece: Text) -> Text? where Text.SubSequence == Text, Text.Element: CookieSyntax {
        let named = piece.drop { $0 == .equals }
        guard let equals = named.firstIndex(of: .equals) else { return nil }
        let value = named[equals...].drop { $0 == .equals }
        return value.isEmpty ? nil : value
    }
}

/// What a cookie header is read by: a byte of ASCII text, or a character of any text.
private protocol CookieSyntax: Equatable {
    static var semicolon: Self { get }
    static var equals: Self { get }
    var isWhitespace: Bool { get }
}

extension UInt8: CookieSyntax {
    fileprivate static var semicolon: UInt8 { UInt8(ascii: ";") }
    fileprivate static var equals: UInt8 { UInt8(ascii: "=") }
    /// As `Character.isWhitespace` reads an ASCII character.
    fileprivate var isWhitespace: Bool { self == 0x20 || (0x09...0x0D).contains(self) }
}

extension Character: CookieSyntax {
    fileprivate static var semicolon: Character { ";" }
    fileprivate static var equals: Character { "=" }
}

/// One request to the portal: who is signed in, in which language, and the CSRF token its forms carry.
struct PortalVisit: Sendable {
    static let sessionCookie = "lk_session"
    static let csrfCookie = "lk_csrf"
    static let languageCookie = "lk_lang"

    var account: Account?
    var sessionToken: String?
    let language: Language
    let csrf: String
    /// Cookies to set on the answer: a new CSRF token, a language chosen with the switch.
    var newCookies: [Cookie] = []

    init(request: Request, cookies: PortalCookies, account: Account?, sessionToken: String?) {
        self.account = account
        self.sessionToken = sessionToken
        if let chosen = request.uri.queryParameters.get("lang").flatMap(Language.init(rawValue:)) {
            language = chosen
            newCookies.append(Cookie(name: Self.languageCookie, value: chosen.rawValue, maxAge: 365 * 86400, path: "/", sameSite: .lax))
        } else if let remembered = cookies[Self.languageCookie].flatMap(Language.init(rawValue:)) {
            language = remembered
        } else {
            language = Language.negotiate(request.headers[.acceptLanguage])
        }
        if let token = cookies[Self.csrfCookie], token.count >= 32 {
            csrf = token
        } else {
            csrf = Base64URL.random()
            newCookies.append(Cookie(name: Self.csrfCookie, value: csrf, path: "/", httpOnly: true, sameSite: .strict))
        }
    }

    func withCookies(_ response: Response) -> Response {
        var response = response
        for cookie in newCookies { response.setCookie(cookie) }
        return response
    }

    /// A redirect after a form, as POST-redirect-GET wants it.
    func redirect(to location: String, extraCookies: [Cookie] = []) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        var response = withCookies(Response(status: .seeOther, headers: headers))
        for cookie in extraCookies { response.setCookie(cookie) }
        return response
    }
}
