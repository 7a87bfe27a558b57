import Crypto
import Foundation
import FluentKit
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import HummingbirdWebSocket
import LatchkeyProtocol
import Logging
import Prometheus

/// The Latchkey cloud service, assembled: the HTTP application and the domain services behind it.
/// Tests use the same assembly as `latchkey serve`, reaching the store to put fixtures in place.
public struct Platform: Sendable {
    public let application: Application<RouterResponder<AppRequestContext>>
    public let store: any LatchkeyStore
    public let passwordResets: PasswordResetService
    public let accounts: AccountService
    public let devices: DeviceService
    public let compatibility: CompatibilityList
    /// Live notifications: tests subscribe to it to see what reaches this node.
    public let notificationHub: NotificationHub
    public let signingKey: Curve25519.Signing.PrivateKey
    let databaseService: DatabaseService

    /// The database itself, for operator tools and for tests that inspect what is stored.
    public var database: any Database { databaseService.database }
}

/// Builds the service from its configuration: opens and migrates the database, loads the platform key, wires routes.
public func buildPlatform(
    _ configuration: LatchkeyConfiguration, clock: LatchkeyClock = .system, logger: Logger? = nil
) async throws -> Platform {
    var logger = logger ?? Logger(label: "latchkey")
    logger.logLevel = configuration.logLevel

    // The keys first: a bad key file stops the start before the database is opened.
    let tls = try configuration.serverTLS()
    let signingKey = try PlatformSigningKey.loadOrCreate(file: configuration.signingKeyFile)
    var rotation: KeyRotation?
    if let previousFile = configuration.previousSigningKeyFile {
        guard let previous = try PlatformSigningKey.load(file: previousFile) else {
            throw ConfigurationError(problems: ["previous-signing-key-file \(previousFile) does not exist."])
        }
        rotation = try KeyRotation.sign(from: previous, to: signingKey.publicKey)
    }
    let databaseService = try await DatabaseService(location: configuration.database, logger: logger)
    let store = FluentStore(database: databaseService.database)
    let compatibility = try CompatibilityList.bundled()
    let hub = NotificationHub()
    let channels = DeviceChannelHub(answerTimeout: configuration.deviceAnswerTimeout)
    var relay: NodeRelay?
    if case .postgres(let url) = configuration.database {
        let created = try NodeRelay(url: url, database: databaseService.database, logger: logger) { message in
            switch message {
            case .notification(let accountId, let wire):
                await hub.deliver([AccountNotification(
                    id: wire.id, accountId: accountId, category: wire.category, kind: wire.kind, title: wire.title,
                    body: wire.body, requestId: wire.requestId, createdAt: wire.createdAt, read: wire.read)])
            case .sessionEnded(let session):
                await hub.endStreams(ofSession: session)
            case .toDevice, .fromDevice:
                await channels.relayed(message)
            }
        }
        await hub.relay(through: created)
        await channels.relay(through: created)
        relay = created
    }

    let limiter = RateLimiter(store: store, clock: clock)
    let accounts = AccountService(
        store: store, hasher: BcryptPasswordHasher(cost: configuration.bcryptCost), clock: clock,
        sessionLifetime: configuration.sessionLifetime, limiter: limiter, streams: hub)
    let resets = PasswordResetService(
        store: store, clock: clock, windows: configuration.windows, compatibility: compatibility, publisher: hub,
        signingKey: signingKey, messenger: channels, limiter: limiter)
    let sites = SiteService(store: store, clock: clock, resets: resets)
    let devices = DeviceService(store: store, clock: clock, resets: resets, messenger: channels,
                                roots: configuration.manufacturerRoots, limiter: limiter)
    let registry = PrometheusCollectorRegistry()
    let metricsFactory = PrometheusMetricsFactory(registry: registry)

    let renderer = try await PortalRenderer.bundled()
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware(factory: metricsFactory))
    router.add(middleware: ClientAddressMiddleware(trustedProxies: configuration.trustedProxies))
    if configuration.servesHTTPS { router.add(middleware: SecureCookiesMiddleware()) }
    router.add(middleware: ErrorMiddleware { request, answer, error in
        // Outside the API, a person is reading: the error is a page in their language.
        request.uri.path.hasPrefix("/api/") ? nil
            : renderer.error(answer, error, PortalVisit(request: request, account: nil, sessionToken: nil), back: "/")
    })
    if let staticFiles = Bundle.module.url(forResource: "static", withExtension: nil, subdirectory: "Portal") {
        router.add(middleware: FileMiddleware(staticFiles.path, urlBasePath: "/static", searchForIndexHtml: false))
    }
    OperationsController(store: store, registry: registry, factory: metricsFactory, metricsToken: configuration.metricsToken).addRoutes(to: router)

    let api = router.group("api/v1")
    AccountController(accounts: accounts).addPublicRoutes(to: api)
    PublicController(compatibility: compatibility, keySet: .platform(signingKey.publicKey)).addRoutes(to: api)

    let signedIn = api.group().add(middleware: BearerAuthMiddleware(accounts: accounts))
    AccountController(accounts: accounts).addRoutes(to: signedIn)
    SiteController(sites: sites, compatibility: compatibility, clock: clock).addRoutes(to: signedIn)
    DeviceController(devices: devices, compatibility: compatibility, clock: clock).addRoutes(to: signedIn)
    PasswordResetController(resets: resets).addRoutes(to: signedIn)
    let inbox = InboxService(store: store)
    let notifications = NotificationController(
        inbox: inbox, hub: hub, keepAliveInterval: configuration.keepAliveInterval,
        streamsPerAccount: OpenConnectionQuota(limit: configuration.connectionLimits.streamsPerAccount),
        streamsPerAddress: OpenConnectionQuota(limit: configuration.connectionLimits.streamsPerAddress))
    notifications.addRoutes(to: signedIn)
    PortalController(
        renderer: renderer, accounts: accounts, sites: sites, devices: devices, resets: resets, inbox: inbox,
        compatibility: compatibility, clock: clock, sessionLifetime: configuration.sessionLifetime, events: notifications
    ).addRoutes(to: router)

    let channel = DeviceChannel(
        devices: devices, resets: resets, hub: channels, signingKey: signingKey, rotation: rotation,
        heartbeatInterval: configuration.deviceHeartbeatInterval, helloTimeout: configuration.deviceHelloTimeout,
        channelsPerAddress: OpenConnectionQuota(limit: configuration.connectionLimits.channelsPerAddress), logger: logger)
    let limits = configuration.connectionLimits
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [RequestReadGuard(readTimeout: limits.readTimeout)], idleTimeout: limits.idleTimeout,
        httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes))
    let ws = WebSocketServerConfiguration(autoPing: .enabled(timePeriod: configuration.deviceHeartbeatInterval))
    let trustedProxies = configuration.trustedProxies
    var server = HTTPServerBuilder { responder in
        GuardedChannel(base: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: .init(http1: http1, ws: ws)) {
            request, connection, _ in
            guard request.path == DeviceChannel.path else { return .dontUpgrade }
            let address = ClientAddressMiddleware.clientAddress(
                peer: connection.remoteAddress?.ipAddress, forwardedFor: request.headerFields[.xForwardedFor], trustedProxies: trustedProxies)
            return .upgrade([:]) { inbound, outbound, _ in
                try await channel.run(inbound: inbound, outbound: outbound, address: address)
            }
        }, limits: limits)
    }
    if let tls {
        server = try .tls(server, tlsConfiguration: tls)
    }
    let application = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "latchkey"),
        services: [
            databaseService, hub,
            ExpirySweeper(resets: resets, devices: devices, limiter: limiter, accounts: accounts, interval: configuration.sweepInterval,
                          logger: logger),
        ] + (relay.map { [$0] } ?? []),
        logger: logger
    )
    return Platform(
        application: application, store: store, passwordResets: resets, accounts: accounts, devices: devices, compatibility: compatibility,
        notificationHub: hub, signingKey: signingKey,
        databaseService: databaseService)
}

/// The HTTP application alone, for callers that need nothing else.
public func buildApplication(_ configuration: LatchkeyConfiguration) async throws -> some ApplicationProtocol {
    try await buildPlatform(configuration).application
}

extension API.KeySet {
    /// The platform's Ed25519 public key as a JWK set (RFC 8037: `kty` OKP, `crv` Ed25519).
    static func platform(_ key: Curve25519.Signing.PublicKey) -> API.KeySet {
        API.KeySet(keys: [
            .init(kty: "OKP", crv: "Ed25519", x: Base64URL.encode(key.rawRepresentation), kid: ResetGrant.keyID(of: key),
                  alg: "EdDSA", use: "sig")
        ])
    }
}

extension LatchkeyConfiguration {
    /// The server's TLS settings from `--tls-cert` and `--tls-key`, or nil for plain HTTP.
    func serverTLS() throws -> TLSConfiguration? {
        guard let tlsCertificateFile, let tlsKeyFile else { return nil }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tlsCertificateFile).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tlsKeyFile, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        } catch {
            throw ConfigurationError(problems: ["tls-cert \(tlsCertificateFile) / tls-key \(tlsKeyFile): not a PEM certificate chain and key (\(error))."])
        }
    }
}
