import Foundation
import Hummingbird
import LatchkeyProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// A running emulated device: its local HTTP API, its discovery responder and its channel to the platform.
public struct DeviceRunner: Sendable {
    public let device: EmulatedDevice
    let configuration: DeviceConfiguration
    let logger: Logger
    let heartbeat: Duration
    /// How often a device pings the platform. A minute: often enough for NAT and for a proxy allowed 120 s of silence
    /// (README), and an idle channel's cost to the platform is these pings (half what every 30 s cost, issue 13).
    public static let defaultHeartbeat = Duration.seconds(60)

    public init(configuration: DeviceConfiguration, logger: Logger = Logger(label: "latchkey-device"),
                heartbeat: Duration = defaultHeartbeat, now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.device = try EmulatedDevice(configuration: configuration, now: now)
        self.configuration = configuration
        self.logger = logger
        self.heartbeat = heartbeat
    }

    /// The channel to the platform alone, without the local API and discovery: for a process that holds thousands of
    /// emulated devices (the benchmark), which would otherwise need a listening socket each. Runs until cancelled.
    public func runChannelOnly(lanAddress: String = "127.0.0.1:8000") async throws {
        try await cloudChannel(lanAddresses: { [lanAddress] }).run()
    }

    private func cloudChannel(lanAddresses: @escaping @Sendable () async -> [String]) throws -> CloudChannel {
        CloudChannel(device: device, url: Self.channelURL(configuration.cloudURL), tls: try Self.tls(caFile: configuration.caFile),
                     logger: logger, heartbeat: heartbeat, lanAddresses: lanAddresses)
    }

    /// Runs until cancelled or until SIGTERM/SIGINT (when `signals`), calling `onListening` with the bound address.
    public func run(handlingSignals signals: Bool = true, onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }) async throws {
        let boundPort = BoundPort(configuration.listenPort)
        let host = configuration.listenHost
        let application = Application(
            router: DeviceLocalAPI(device: device, ownHosts: Self.ownHosts(listenHost: host, advertised: configuration.advertisedAddress),
                                   port: { await boundPort.value }).buildRouter(),
            configuration: .init(address: .hostname(host, port: configuration.listenPort), serverName: "latchkey-device"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.listenPort
                await boundPort.set(port)
                await onListening(host, port)
            },
            logger: logger
        )
        let advertised = configuration.advertisedAddress ?? (host == "0.0.0.0" ? "127.0.0.1" : host)
        let services: [any Service] = [
            application,
            DiscoveryResponder(device: device, host: configuration.discoveryHost, port: configuration.discoveryPort, advertisedAddress: advertised,
                               httpPort: { await boundPort.value }, logger: logger),
            try cloudChannel(lanAddresses: { ["\(advertised):\(await boundPort.value)"] }),
        ]
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
            logger: logger))
        try await group.run()
    }

    /// The names the device answers to in `Host`: its own addresses, never a DNS name someone else controls.
    static func ownHosts(listenHost: String, advertised: String?) -> Set<String> {
        var hosts: Set<String> = [listenHost]
        if let advertised { hosts.insert(advertised) }
        if listenHost == "0.0.0.0" || listenHost == "::" {
            hosts.insert("127.0.0.1")
            for interface in (try? System.enumerateDevices()) ?? [] {
                if let address = interface.address?.ipAddress { hosts.insert(address) }
            }
        }
        return hosts
    }

    /// The system's CAs, or only the one in `caFile`.
    static func tls(caFile: String?) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) }
        return tls
    }

    /// `http://host:port` → `ws://host:port/api/v1/devices/channel`.
    static func channelURL(_ cloud: String) -> String {
        var base = cloud.hasSuffix("/") ? String(cloud.dropLast()) : cloud
        if base.hasPrefix("https://") { base = "wss://" + base.dropFirst("https://".count) }
        if base.hasPrefix("http://") { base = "ws://" + base.dropFirst("http://".count) }
        return base + "/api/v1/devices/channel"
    }
}

/// The HTTP port actually bound (the configured one may be 0).
actor BoundPort {
    private(set) var value: Int
    init(_ value: Int) { self.value = value }
    func set(_ port: Int) { value = port }
}
