import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LatchkeyProtocol
import NIOCore
import NIOFoundationCompat
import NIOPosix

/// A device that answered discovery.
public struct DiscoveredDevice: Sendable, Equatable {
    public var serial: String
    public var model: String
    public var firmware: String
    public var deviceType: String
    public var ipv4Address: String
    public var httpPort: Int
    public var activated: Bool
    public var passwordResetAbility: Bool

    /// `HOST:PORT` of its local API.
    public var address: String { "\(ipv4Address):\(httpPort)" }
}

/// Finds devices on this LAN with SADP inquiries: broadcast, multicast to 239.255.255.250, and any addresses given.
public struct LANDiscovery: Sendable {
    public var port: Int
    public var wait: Duration
    /// Where to send the probe besides broadcast and multicast (a subnet's broadcast address, or loopback).
    public var extraTargets: [String]

    public init(port: Int = SADP.port, wait: Duration = .milliseconds(1500), extraTargets: [String] = []) {
        self.port = port
        self.wait = wait
        self.extraTargets = extraTargets
    }

    public func discover() async throws -> [DiscoveredDevice] {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .bind(host: "0.0.0.0", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                        configuration: .init(inboundType: AddressedEnvelope<ByteBuffer>.self,
                                                             outboundType: AddressedEnvelope<ByteBuffer>.self))
                }
            }
        let probe = SADP.Probe()
        // A datagram to an address without a route fails the whole socket in NIO, so unreachable targets are left out.
        let targets = Set(["255.255.255.255", SADP.multicastGroup] + extraTargets + Self.subnetBroadcasts())
            .filter { Self.hasRoute(to: $0, port: port) }
        return try await channel.executeThenClose { inbound, outbound in
            for target in targets {
                guard let address = try? SocketAddress(ipAddress: target, port: port) else { continue }
                // A target this host has no route to is simply not on this LAN.
                try? await outbound.write(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(string: probe.xml)))
            }
            return try await withThrowingTaskGroup(of: [DiscoveredDevice].self) { group in
                group.addTask {
                    var found: [String: DiscoveredDevice] = [:]
                    do {
                        for try await envelope in inbound {
                            guard let match = SADP.ProbeMatch(xml: Data(buffer: envelope.data)), match.uuid == probe.uuid else { continue }
                            found[match.deviceSN] = DiscoveredDevice(
                                serial: match.deviceSN, model: match.deviceDescription, firmware: match.softwareVersion,
                                deviceType: match.deviceType, ipv4Address: match.ipv4Address, httpPort: match.httpPort,
                                activated: match.activated, passwordResetAbility: match.passwordResetAbility)
                        }
                    } catch is CancellationError {}
                    return found.values.sorted { $0.serial < $1.serial }
                }
                try await Task.sleep(for: wait)
                channel.channel.close(promise: nil)
                let result = try await group.next() ?? []
                group.cancelAll()
                return result
            }
        }
    }

    /// Whether this host can send to `address` at all: a connected UDP socket answers at once, sending nothing.
    static func hasRoute(to address: String, port: Int) -> Bool {
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &target.sin_addr) == 1 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &yes, socklen_t(MemoryLayout<Int32>.size))
        return withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// The broadcast address of each IPv4 interface, for stacks that do not loop 255.255.255.255 back.
    static func subnetBroadcasts() -> [String] {
        guard let interfaces = try? System.enumerateDevices() else { return [] }
        return interfaces.compactMap { device in
            guard case .v4 = device.address, let broadcast = device.broadcastAddress else { return nil }
            return broadcast.ipAddress
        }
    }
}
