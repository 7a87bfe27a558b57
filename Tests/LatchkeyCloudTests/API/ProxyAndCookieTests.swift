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
}
