import AsyncHTTPClient
import Foundation
import LatchkeyProtocol
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// JSON over HTTP with Latchkey's error body, shared by the service client and the device link.
struct HTTPTransport: Sendable {
    let baseURL: String
    let client: HTTPClient
    var timeout: TimeAmount = .seconds(15)
    /// Who should be answering there, for error messages: the service, or a device on the LAN.
    var peer: Peer = .service

    enum Peer: Sendable {
        case service, device

        var remedy: String {
            switch self {
            case .service: "is `latchkey serve` running there, and is --server right?"
            case .device: "is the device powered on, and is this computer on its LAN?"
            }
        }
    }

    /// The address said to people: the service's root or the device's, without the API's path.
    private var shownAddress: String {
        for suffix in ["/api/v1", LocalAPI.pathPrefix] where baseURL.hasSuffix(suffix) { return String(baseURL.dropLast(suffix.count)) }
        return baseURL
    }

    func send<Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, token: String? = nil, body: (some Encodable)? = Optional<String>.none,
        as answer: Answer.Type = Answer.self
    ) async throws(ClientError) -> Answer {
        let data = try await exchange(method, path, token: token, body: body)
        do {
            return try WireCoding.makeDecoder().decode(Answer.self, from: data)
        } catch {
            throw .unexpectedAnswer("\(method) \(path): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    func send(_ method: HTTPMethod, _ path: String, token: String? = nil, body: (some Encodable)? = Optional<String>.none) async throws(ClientError) {
        _ = try await exchange(method, path, token: token, body: body)
    }

    /// Every page of a list: the service answers a page at a time and names the next in `Link: <…>; rel="next"`.
    func all<Item: Decodable>(_ path: String, token: String?, as item: Item.Type = Item.self) async throws(ClientError) -> [Item] {
        var items: [Item] = []
        var url = baseURL + path
        // A service that kept naming pages would otherwise keep the caller forever.
        for _ in 0..<10_000 {
            let (data, headers) = try await exchange(.GET, url: url, shownPath: path, token: token, body: Optional<String>.none)
            do {
                items += try WireCoding.makeDecoder().decode([Item].self, from: data)
            } catch {
                throw .unexpectedAnswer("GET \(path): \(String(decoding: data.prefix(200), as: UTF8.self))")
            }
            guard let next = Self.nextPage(headers) else { return items }
            // The link is a path on the same service.
            guard next.hasPrefix("/"), !next.hasPrefix("//") else { throw .unexpectedAnswer("GET \(path): a next page elsewhere (\(next))") }
            url = shownAddress + next
        }
        throw .unexpectedAnswer("GET \(path): more than 10,000 pages")
    }

    /// The target of `Link: <…>; rel="next"` (RFC 8288), if any.
    static func nextPage(_ headers: HTTPHeaders) -> String? {
        for value in headers["Link"] {
            for link in value.split(separator: ",") {
                let parts = link.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let target = parts.first, target.hasPrefix("<"), target.hasSuffix(">"),
                    parts.dropFirst().contains(where: { $0.replacingOccurrences(of: "\"", with: "") == "rel=next" })
                else { continue }
                return String(target.dropFirst().dropLast())
            }
        }
        return nil
    }

    private func exchange(_ method: HTTPMethod, _ path: String, token: String?, body: (some Encodable)?) async throws(ClientError) -> Data {
        try await exchange(method, url: baseURL + path, shownPath: path, token: token, body: body).0
    }

    private func exchange(_ method: HTTPMethod, url: String, shownPath path: String, token: String?, body: (some Encodable)?)
        async throws(ClientError) -> (Data, HTTPHeaders)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        do {
            // Always JSON, even with no body: a device's local API refuses any other POST (no cross-site forms).
            if method == .POST || body != nil { request.headers.add(name: "Content-Type", value: "application/json") }
            if let body { request.body = .bytes(ByteBuffer(data: try WireCoding.makeEncoder().encode(body))) }
        } catch {
            throw .unexpectedAnswer("could not encode the request: \(error)")
        }
        let status: Int
        let data: Data
        let headers: HTTPHeaders
        do {
            let response = try await client.execute(request, timeout: timeout)
            status = Int(response.status.code)
            headers = response.headers
            data = Data(buffer: try await response.body.collect(upTo: 8 << 20))
        } catch {
            throw describe(error)
        }
        guard (200..<300).contains(status) else {
            if let body = try? WireCoding.makeDecoder().decode(APIErrorBody.self, from: data) {
                throw .refused(status: status, code: body.error.code, message: body.error.message)
            }
            throw .unexpectedAnswer("\(method) \(path) answered \(status)")
        }
        return (data, headers)
    }

    /// A sentence with a remedy for each way a call can fail before any answer.
    private func describe(_ error: any Error) -> ClientError {
        let address = shownAddress
        switch error {
        case is NIOSSLError, is NIOSSLExtraError, is BoringSSLError:
            return .untrustedServer(
                "TLS with \(address) failed (\(error)): if its certificate comes from a private CA, give that CA with --ca-file "
                    + "(or LATCHKEY_CA_FILE); check that --server names the host the certificate is for; a service that speaks "
                    + "plain HTTP is reached with http://.")
        case let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error):
            let seconds = timeout.nanoseconds / 1_000_000_000
            let scheme = address.hasPrefix("https://")
                ? "If the service speaks plain HTTP, the address starts with http://."
                : "If the service uses TLS, the address starts with https://."
            return .unreachable("\(address) did not answer within \(seconds) s: \(peer.remedy) \(scheme)")
        case let error as HTTPClientError where error == .invalidURL:
            return .unreachable("\(address) is not a URL: give one such as http://127.0.0.1:8080 or https://latchkey.example.com.")
        default:
            let reason = "\(error)".contains("refused") ? "connection refused" : "\(error)"
            return .unreachable("Could not reach \(address) (\(reason)) — \(peer.remedy)")
        }
    }
}
