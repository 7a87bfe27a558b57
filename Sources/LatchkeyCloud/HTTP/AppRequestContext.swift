import Foundation
import Hummingbird
import LatchkeyProtocol
import NIOCore

/// The per-request context: who is calling, once the bearer token has been checked.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Only on an upgrade to the device channel: where its route gives consent (`HTTPWithDeviceChannels`).
    let deviceChannelUpgrade: DeviceChannelUpgrade?
    var account: Account?
    var bearerToken: String?
    /// The peer of the connection: the client, or the reverse proxy in front.
    let peerAddress: String?
    /// The client's own address: the peer's, or the one a trusted proxy forwarded (`ClientAddressMiddleware`).
    var clientAddress: String?
    /// On portal routes: who is signed in, their language and CSRF token (`PortalSessionMiddleware`).
    var portalVisit: PortalVisit?
    /// The client's connection: a long answer (the live stream) stops when it closes, not at its next write; a device
    /// channel's heartbeat joins its pipeline once it is upgraded.
    let connection: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.init(source: source, upgrade: nil)
    }

    init(source: ApplicationRequestContextSource, upgrade: DeviceChannelUpgrade?) {
        self.coreContext = .init(source: source)
        self.deviceChannelUpgrade = upgrade
        self.peerAddress = source.channel.remoteAddress?.ipAddress
        self.clientAddress = peerAddress
        self.connection = source.channel
    }

    /// Every body this service takes (JSON, forms) is small: anything larger is refused with 413.
    static let bodyLimit = 64 * 1024
    public var maxUploadSize: Int { Self.bodyLimit }

    public var requestDecoder: JSONDecoder { WireCoding.makeDecoder() }
    public var responseEncoder: ResponseJSON { ResponseJSON() }

    func requireAccount() throws -> Account {
        guard let account else { throw LatchkeyError.unauthenticated("Sign in first: send 'Authorization: Bearer <token>'.") }
        return account
    }

    /// A UUID path parameter; a malformed one names nothing, so it answers `not_found` like an unknown one.
    func uuid(_ name: String, of thing: String) throws -> UUID {
        guard let text = parameters.get(name), let id = UUID(storedText: text) else {
            throw LatchkeyError.notFound("No \(thing) with id '\(parameters.get(name) ?? "")'.")
        }
        return id
    }
}

extension Request {
    /// Decodes a JSON body, turning every decoding failure into `invalid_request` with the field it concerns.
    func decodeBody<T: Decodable>(_ type: T.Type, context: AppRequestContext) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw LatchkeyError.bodyTooLarge(limit: context.maxUploadSize)
        }
        guard buffer.readableBytes > 0 else { throw LatchkeyError.invalidRequest("The request needs a JSON body.") }
        do {
            return try context.requestDecoder.decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw LatchkeyError.invalidRequest(WireCoding.describe(error))
        }
    }
}
