import Foundation
import Hummingbird
import LatchkeyProtocol

/// The device's own web page on its LAN (`/`): its login page, whose "Forgot password?" shows a presence code for an
/// approved reset, in Italian or English. Plain HTML, no script: a courier with only a phone can read it.
struct DeviceLocalPage {
    let device: EmulatedDevice

    enum Language: String { case en, it }

    static func language(_ request: Request) -> Language {
        if let chosen = request.uri.queryParameters.get("lang").flatMap(Language.init(rawValue:)) { return chosen }
        let accepted = request.headers[.acceptLanguage]?.lowercased() ?? ""
        return accepted.hasPrefix("it") ? .it : .en
    }

    func addRoutes(to router: Router<DeviceRequestContext>) {
        router.get("/") { request, _ in
            let language = Self.language(request)
            let info = await device.info
            return Self.html(language, title: "\(info.model) · \(info.serial)", body: """
                <h1>\(Self.escape(info.model))</h1>
                <p>\(Self.escape(info.serial)) · \(Self.escape(info.firmware))</p>
                <form method="post" action="/login?lang=\(language.rawValue)">
                  <label>\(language == .it ? "Utente" : "User name") <input name="username" value="admin" autocomplete="username"></label>
                  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
                  <button type="submit" disabled>\(language == .it ? "Accedi" : "Sign in")</button>
                </form>
                <form method="post" action="/presence-code?lang=\(language.rawValue)">
                  <button type="submit" id="forgot">\(language == .it ? "Password dimenticata?" : "Forgot password?")</button>
                </form>
                """)
        }
        router.post("presence-code") { request, _ in
            let language = Self.language(request)
            do {
                let code = try await device.presenceCode()
                return Self.html(language, title: language == .it ? "Codice di presenza" : "Presence code", body: Self.codeBody(code, language))
            } catch {
                let message = language == .it
                    ? "Nessuna reimpostazione della password di questo dispositivo è stata approvata: il codice compare solo dopo l'approvazione del proprietario."
                    : "No password reset of this device has been approved: a code appears only after the owner approves one."
                return Self.html(language, title: language == .it ? "Nessun codice" : "No code", body: "<p id=\"no-code\">\(message)</p>",
                                 status: .conflict)
            }
        }
    }

    static func codeBody(_ code: LocalAPI.PresenceCode, _ language: Language) -> String {
        let until = code.expiresAt.formatted(
            Date.FormatStyle(date: .omitted, time: .standard).locale(Locale(identifier: language == .it ? "it_IT" : "en_GB")))
        let mode = switch (code.mode, language) {
        case (.onSite, .it): "in sede"
        case (.offSite, .it): "fuori sede"
        case (.onSite, .en): "on site"
        case (.offSite, .en): "off site"
        case (.owner, .it): "del proprietario"
        case (.owner, .en): "the owner's own"
        }
        return language == .it
            ? """
            <h1>Codice di presenza</h1>
            <p class="code" id="presence-code">\(code.code)</p>
            <p>Per la reimpostazione della password chiesta da <strong>\(escape(code.requestedBy))</strong> (\(mode)). Vale una volta sola, fino alle \(until) (2 minuti).</p>
            <p class="warning"><strong>Dallo solo a chi si trova accanto a questo dispositivo.</strong></p>
            """
            : """
            <h1>Presence code</h1>
            <p class="code" id="presence-code">\(code.code)</p>
            <p>For the password reset asked by <strong>\(escape(code.requestedBy))</strong> (\(mode)). Valid once, until \(until) (2 minutes).</p>
            <p class="warning"><strong>Give it only to someone standing next to this device.</strong></p>
            """
    }

    static func html(_ language: Language, title: String, body: String, status: HTTPResponse.Status = .ok) -> Response {
        let page = """
            <!doctype html>
            <html lang="\(language.rawValue)"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>body{font-family:sans-serif;max-width:28rem;margin:1rem auto;padding:0 1rem}.code{font-size:2.5rem;letter-spacing:.3rem;font-weight:bold}.warning{color:#a00}label{display:block;margin:.5rem 0}</style>
            </head><body>
            \(body)
            </body></html>
            """
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
