import Foundation
import Hummingbird
@testable import LatchkeyCloud
import Testing

/// Behind a reverse proxy that ends TLS: cookies are `Secure`, and only the named proxy may say who the client is.
@Suite("Behind a proxy", .timeLimit(.minutes(3)))
struct ProxyAndCookieTests {
    @Test func cookiesAreSecureOnlyWhenBrowsersComeOverHTTPS() async throws {
        for behindProxy in [false, true] {
            try await TestPlatform.run(configure: {
                $0.behindProxy = behindProxy
                $0.trustedProxies = ["127.0.0.1"]
            }) { app in
                let page = try await app.client.execute(uri: "/signin?lang=en", method: .get) { $0 }
                let cookies = page.headers[values: .setCookie]
                #expect(!cookies.isEmpty)
                #expect(cookies.allSatisfy { $0.contains("; Secure") } == behindProxy, "\(cookies)")
            }
        }
    }

    @Test func theForwardedAddressCountsOnlyFromATrustedProxy() {
        let proxies: Set<String> = ["10.0.0.2"]
        // From the proxy: the right-most address it did not add itself.
        #expect(ClientAddressMiddleware.clientAddress(peer: "10.0.0.2", forwardedFor: "203.0.113.9", trustedProxies: proxies) == "203.0.113.9")
        #expect(ClientAddressMiddleware.clientAddress(peer: "10.0.0.2", forwardedFor: "1.2.3.4, 203.0.113.9", trustedProxies: proxies)
            == "203.0.113.9")
        // From anyone else the header is a claim, not a fact.
        #expect(ClientAddressMiddleware.clientAddress(peer: "198.51.100.7", forwardedFor: "203.0.113.9", trustedProxies: proxies)
            == "198.51.100.7")
        #expect(ClientAddressMiddleware.clientAddress(peer: "10.0.0.2", forwardedFor: nil, trustedProxies: proxies) == "10.0.0.2")
    }

    @Test func configurationRefusesPlainHTTPOffLoopback() throws {
        #expect(LatchkeyConfiguration.isLoopback("127.0.0.1"))
        #expect(LatchkeyConfiguration.isLoopback("localhost"))
        #expect(!LatchkeyConfiguration.isLoopback("0.0.0.0"))
        #expect(!LatchkeyConfiguration.isLoopback("192.0.2.1"))
    }

    /// The portal reads its three cookies itself (`PortalCookies`); whatever a browser or an attacker sends, it must
    /// find what Hummingbird's `Cookies` finds, or a session or CSRF token would be read otherwise than it was written.
    @Test func portalCookiesReadAsHummingbirdReadsThem() {
        let headerSets: [[String]] = [
            [],
            ["lk_session=abc; lk_csrf=\(String(repeating: "c", count: 43)); lk_lang=it"],
            ["lk_session=first; lk_session=second"],
            ["lk_session=; lk_session=second; lk_csrf==x"],
            ["lk_session=one", "lk_session=two; lk_lang=en"],
            ["  lk_session=spaced ;lk_csrf=x=y=z;lk_lang"],
            ["lk_session=; lk_csrf=\"quoted\"; =orphan; ;;"],
            ["LK_SESSION=upper; lk_session =trailing; lk_session=last"],
            ["\tlk_lang=it\u{2003}; lk_session=t\u{00E8}"],
            // Where characters and bytes part: a mark joining the `=` or `;` before it, CR LF, a wide space, a Kelvin sign.
            ["lk_session==\u{338}x; lk_csrf=\u{338}=y;\u{301} lk_lang=it", "\r\nlk_session=crlf", "\u{2003}lk_csrf=wide; L\u{212A}_SESSION=k"],
        ]
        // And headers put together at random from the pieces that matter to a parser.
        var generator = SystemRandomNumberGenerator()
        let parts = ["lk_session", "lk_csrf", "lk_lang", "=", "==", ";", "; ", " ", "\t", "v", "x=y", "\u{00E8}", "\"",
                     "\u{338}", "\u{301}", "\r\n", "\u{2003}", "\u{212A}"]
        let randomSets = (0..<2_000).map { _ in
            (0..<Int.random(in: 1...2, using: &generator)).map { _ in
                (0..<Int.random(in: 0...12, using: &generator)).map { _ in parts.randomElement(using: &generator)! }.joined()
            }
        }
        for headers in headerSets + randomSets {
            let ours = PortalCookies(headers: headers)
            let hummingbirds = Cookies(from: headers)
            for name in [PortalVisit.sessionCookie, PortalVisit.csrfCookie, PortalVisit.languageCookie, "LK_SESSION", ""] {
                #expect(ours[name] == hummingbirds[name]?.value, "\(name) in \(headers)")
            }
        }
    }
}
