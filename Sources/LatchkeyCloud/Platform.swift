import Crypto
import FluentKit
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore
import NIOSSL
import LatchkeyProtocol
import Logging
import Prometheus
import ServiceLifecycle

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
    /// Every route the service answers (the device channel's upgrade included), for the OpenAPI document's check.
    public let routes: [(method: String, path: String)]
    /// Sends the queued e-mails, when mail is configured; tests call its `deliverDue()` to send without waiting.
    public let mail: MailDispatcher?
    let databaseService: DatabaseService

    /// The database itself, for operator tools and for tests that inspect what is stored.
    public var database: any Database { databaseService.database }
}

/// The domain services and what they run on, before any HTTP: built first, then handed to the routers.
struct PlatformServices {
    let configuration: LatchkeyConfiguration
    let clock: LatchkeyClock
    let logger: Logger
    let databaseService: DatabaseService
    let store: any LatchkeyStore
    let signingKey: Curve25519.Signing.PrivateKey
    let rotation: KeyRotation?
    let compatibility: CompatibilityList
    let hub: NotificationHub
    let channels: DeviceChannelHub
    let relay: NodeRelay?
    let limiter: RateLimiter
    let accounts: AccountService
    let resets: PasswordResetService
    let sites: SiteService
    let devices: DeviceService
    let inbox: InboxService

    /// Opens and migrates the database and loads the platform key; a bad key file stops the start before the database
    /// is opened.
    static func build(_ configuration: LatchkeyConfiguration, clock: LatchkeyClock, logger: Logger) async throws -> PlatformServices {
        let signingKey = try PlatformSigningKey.loadOrCreate(file: configuration.signingKeyFile)
        var rotation: KeyRotation?
        if let previousFile = configuration.previousSigningKeyFile {
            guard let previous = try PlatformSigningKey.load(file: previousFile) else {
                throw ConfigurationError(problems: ["previous-signing-key-file \(previousFile) does not exist."])
            }
            rotation = try KeyRotation.sign(from: previous, to: signingKey.publicKey)
        }
        let databaseService = try await DatabaseService(location: configuration.database, logger: logger)
        let store = FluentStore(databaseService)
        let compatibility = try CompatibilityList.bundled()
        let hub = NotificationHub()
        let channels = DeviceChannelHub(answerTimeout: configuration.deviceAnswerTimeout)
        let sessions = SessionCache()
        var relay: NodeRelay?
        if case .postgres(let url) = configuration.database {
            let created = try NodeRelay(url: url, database: databaseService.database, logger: logger) { message in
                switch message {
                case .notification(let accountId, let wire, let publishedAt):
                    await hub.deliver([AccountNotification(
                        id: wire.id, accountId: accountId, category: wire.category, kind: wire.kind, title: wire.title,
                        body: wire.body, requestId: wire.requestId, createdAt: wire.createdAt, read: wire.read)],
                        publishedAt: publishedAt.map(Date.init(timeIntervalSince1970:)) ?? Date())
                case .sessionEnded(let session):
                    sessions.forget(tokenHash: session)
                    await hub.endStreams(ofSession: session)
                case .toDevice, .fromDevice:
                    await channels.relayed(message)
                }
            }
            await hub.relay(through: created)
            await channels.relay(through: created)
            relay = created
        }
        let limiter = RateLimiter(store: store, clock: clock, policy: configuration.rateLimits)
        let accounts = AccountService(
            store: store, hasher: BcryptPasswordHasher(cost: configuration.bcryptCost), clock: clock,
            sessionLifetime: configuration.sessionLifetime, limiter: limiter, streams: hub, sessions: sessions)
        let resets = PasswordResetService(
            store: store, clock: clock, windows: configuration.windows, compatibility: compatibility, publisher: hub,
            signingKey: signingKey, messenger: channels, limiter: limiter, queuesMail: configuration.mail != nil)
        return PlatformServices(
            configuration: configuration, clock: clock, logger: logger, databaseService: databaseService, store: store,
            signingKey: signingKey, rotation: rotation, compatibility: compatibility, hub: hub, channels: channels, relay: relay,
            limiter: limiter, accounts: accounts, resets: resets,
            sites: SiteService(store: store, clock: clock, resets: resets),
            devices: DeviceService(store: store, clock: clock, resets: resets, messenger: channels,
                                   roots: configuration.manufacturerRoots, limiter: limiter),
            inbox: InboxService(store: store))
    }

    /// The services that run beside the HTTP server, stopped with it.
    var background: [any Service] {
        // The node's heartbeat: what keeps the devices whose channels it holds online on every node.
        [databaseService, hub,
         Periodic(interval: configuration.deviceHeartbeatInterval, logger: logger, failure: "Node heartbeat failed") { [devices] in
             try await devices.nodeHeartbeat()
         },
         ExpirySweeper(resets: resets, devices: devices, limiter: limiter, accounts: accounts, interval: configuration.sweepInterval,
                       logger: logger)] + (relay.map { [$0] } ?? [])
    }
}

/// The routers over the services: one for HTTP (API, portal, operations), one for the device channel's WebSocket
/// upgrade, both behind the same middleware for metrics and the client's address.
func buildRouters(_ services: PlatformServices, metrics: PrometheusMetricsFactory, registry: PrometheusCollectorRegistry)
    async throws -> Routers
{
    let configuration = services.configuration
    let renderer = try await PortalRenderer.bundled()
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware(factory: metrics))
    router.add(middleware: ClientAddressMiddleware(trustedProxies: configuration.trustedProxies))
    if configuration.servesHTTPS { router.add(middleware: SecureCookiesMiddleware()) }
    router.add(middleware: ErrorMiddleware { request, answer, error in
        // Outside the API, a person is reading: the error is a page in their language.
        request.uri.path.hasPrefix("/api/") ? nil
            : renderer.error(answer, error, PortalVisit(request: request, cookies: PortalCookies(request), account: nil, sessionToken: nil), back: "/")
    })
    if let staticFiles = Bundle.module.url(forResource: "static", withExtension: nil, subdirectory: "Portal") {
        router.add(middleware: StaticFilesMiddleware(files: FileMiddleware(staticFiles.path, urlBasePath: "/static", searchForIndexHtml: false)))
    }
    OperationsController(store: services.store, registry: registry, factory: metrics, metricsToken: configuration.metricsToken,
                         deliveryLatency: services.hub.deliveryLatency, channels: services.channels)
        .addRoutes(to: router)

    let api = router.group("api/v1")
    AccountController(accounts: services.accounts).addPublicRoutes(to: api)
    PublicController(compatibility: services.compatibility, keySet: .platform(services.signingKey.publicKey)).addRoutes(to: api)

    let signedIn = api.group().add(middleware: BearerAuthMiddleware(accounts: services.accounts))
    AccountController(accounts: services.accounts).addRoutes(to: signedIn)
    signedIn.addRoutes(SiteController(sites: services.sites, devices: services.devices, compatibility: services.compatibility,
                                      clock: services.clock).endpoints, atPath: "sites")
    signedIn.addRoutes(DeviceController(devices: services.devices, sites: services.sites, resets: services.resets,
                                        compatibility: services.compatibility, clock: services.clock).endpoints, atPath: "devices/:serial")
    signedIn.addRoutes(PasswordResetController(resets: services.resets).endpoints, atPath: "password-resets")
    let limits = configuration.connectionLimits
    let notifications = NotificationController(
        inbox: services.inbox, hub: services.hub, keepAliveInterval: configuration.keepAliveInterval,
        streamsPerAccount: OpenConnectionQuota(limit: limits.streamsPerAccount),
        streamsPerAddress: OpenConnectionQuota(limit: limits.streamsPerAddress))
    notifications.addRoutes(to: signedIn)
    PortalController(
        renderer: renderer, accounts: services.accounts, sites: services.sites, devices: services.devices, resets: services.resets,
        inbox: services.inbox, compatibility: services.compatibility, clock: services.clock,
        sessionLifetime: configuration.sessionLifetime, events: notifications
    ).addRoutes(to: router)

    let channel = DeviceChannel(
        devices: services.devices, resets: services.resets, hub: services.channels, signingKey: services.signingKey,
        rotation: services.rotation,
        helloTimeout: configuration.deviceHelloTimeout, channelsPerAddress: OpenConnectionQuota(limit: limits.channelsPerAddress),
        handshakes: AdmissionGate(limit: limits.concurrentHandshakes, patience: limits.handshakePatience),
        logger: services.logger)
    let webSocket = Router(context: AppRequestContext.self)
    webSocket.add(middleware: RequestMetricsMiddleware(factory: metrics))
    webSocket.add(middleware: ClientAddressMiddleware(trustedProxies: configuration.trustedProxies))
    webSocket.get(RouterPath(DeviceChannel.path)) { _, context -> HTTPResponse.Status in
        // Only an upgrade's own context carries the consent: this router decides upgrades and nothing else.
        guard let upgrade = context.deviceChannelUpgrade else { return .notFound }
        upgrade.consent(from: context.clientAddress)
        return .ok
    }
    let silenceWatch = ChannelSilenceWatch(silence: configuration.channelPingInterval, answerWithin: configuration.channelPingAnswerTimeout)
    let connections = DeviceConnections()
    let opened: @Sendable (any Channel, String?) throws -> Void = { connection, address in
        let frames = DeviceChannelFrames(eventLoop: connection.eventLoop, helloTimeout: configuration.deviceHelloTimeout, roster: connections)
        try ChannelHeartbeat.install(on: connection, watch: silenceWatch)
        try connection.pipeline.syncOperations.addHandler(frames)
        channel.open(frames.connection, address: address)
    }
    return Routers(http: router, webSocket: webSocket, openDeviceChannel: opened, deviceConnections: connections)
}

/// What `buildRouters` makes: the HTTP router, the one that decides device channel upgrades, and how an upgraded
/// connection becomes a device channel.
struct Routers {
    let http: Router<AppRequestContext>
    let webSocket: Router<AppRequestContext>
    let openDeviceChannel: @Sendable (any Channel, String?) throws -> Void
    let deviceConnections: DeviceConnections
}

/// Builds the service from its configuration: the services, then the routers over them, then the server.
public func buildPlatform(
    _ configuration: LatchkeyConfiguration, clock: LatchkeyClock = .system, logger: Logger? = nil
) async throws -> Platform {
    var logger = logger ?? Logger(label: "latchkey")
    logger.logLevel = configuration.logLevel
    let tls = try configuration.serverTLS()
    let services = try await PlatformServices.build(configuration, clock: clock, logger: logger)
    let registry = PrometheusCollectorRegistry()
    let metrics = PrometheusMetricsFactory(registry: registry)
    let routers = try await buildRouters(services, metrics: metrics, registry: registry)
    let router = routers.http
    var mail: MailDispatcher?
    if let settings = configuration.mail {
        mail = try await MailDispatcher(store: services.store, clock: clock, settings: settings, metrics: metrics, logger: logger)
    }

    let limits = configuration.connectionLimits
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [RequestReadGuard(readTimeout: limits.readTimeout)], idleTimeout: limits.idleTimeout,
        httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes))
    let channelRouter = routers.webSocket.buildResponder()
    let openDeviceChannel = routers.openDeviceChannel
    let guarded = { @Sendable (responder: @escaping HTTPChannelHandler.Responder) in
        GuardedChannel(
            base: HTTPWithDeviceChannels(responder: responder, channelRouter: channelRouter, http1: http1,
                                         opened: openDeviceChannel),
            limits: limits)
    }
    let server = HTTPServerBuilder { responder in
        guard let tls else { return guarded(responder) }
        return SparseTLSBufferChannel(base: try TLSChannel(guarded(responder), tlsConfiguration: tls))
    }
    let application = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "latchkey",
                             backlog: limits.listenBacklog),
        services: services.background + [routers.deviceConnections] + (mail.map { [$0] } ?? []),
        logger: logger
    )
    let routes = (router.routes + routers.webSocket.routes).map { (method: $0.method.rawValue, path: $0.path.description) }
    return Platform(
        application: application, store: services.store, passwordResets: services.resets, accounts: services.accounts,
        devices: services.devices, compatibility: services.compatibility, notificationHub: services.hub,
        signingKey: services.signingKey, routes: routes, mail: mail, databaseService: services.databaseService)
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
