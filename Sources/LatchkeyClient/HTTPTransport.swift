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

    private func exchange(_ method: HTTPMethod, _ path: String, token: String?, body: (some Encodable)?) async throws(ClientError) -> Data {
        var request = HTTPClientRequest(url: baseURL + path)
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
        do {
            let response = try await client.execute(request, timeout: timeout)
            status = Int(response.status.code)
            data = Data(buffer: try await response.body.collect(upTo: 8 << 20))
        } catch let error as NIOSSLError {
            throw .untrustedServer(
                "The service at \(baseURL) presented a TLS certificate this app does not trust (\(error)): give the CA that "
                    + "signed it with --ca-file (or LATCHKEY_CA_FILE).")
        } catch {
            throw .unreachable("Could not reach \(baseURL): \(error)")
        }
        guard (200..<300).contains(status) else {
            if let body = try? WireCoding.makeDecoder().decode(APIErrorBody.self, from: data) {
                throw .refused(status: status, code: body.error.code, message: body.error.message)
            }
            throw .unexpectedAnswer("\(method) \(path) answered \(status)")
        }
        return data
    }
}
