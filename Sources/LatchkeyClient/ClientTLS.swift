import AsyncHTTPClient
import Foundation
import NIOSSL
import Synchronization

/// The app's TLS trust: the system's CAs, or only the private CA an operator gives (`--ca-file`, `LATCHKEY_CA_FILE`).
public enum ClientTLS {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    /// An HTTP client trusting only the CA certificates in `caFile` (PEM), or `.shared` for the system's. One per file,
    /// kept for the life of the process like `HTTPClient.shared`.
    public static func httpClient(caFile: String?) throws -> HTTPClient {
        guard let caFile else { return .shared }
        return try clients.withLock { clients in
            if let client = clients[caFile] { return client }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            // A refused handshake is retried until the connect deadline: keep it short so the reason comes quickly.
            configuration.timeout.connect = .seconds(5)
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[caFile] = client
            return client
        }
    }
}
