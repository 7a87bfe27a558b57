import Crypto
import Foundation
import LatchkeyProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Answers SADP inquiries on the LAN (UDP, multicast 239.255.255.250 and broadcast) so installer tools find the device.
///
/// It answers only well-formed inquiries, once each, to the sender alone, and at most a few times a second per
/// sender: a forged source address cannot turn it into an amplifier.
struct DiscoveryResponder: Service {
    let device: EmulatedDevice
    let host: String
    let port: Int
    let advertisedAddress: String
    let httpPort: @Sendable () async -> Int
    let logger: Logger

    func run() async throws {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_broadcast), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                        configuration: .init(inboundType: AddressedEnvelope<ByteBuffer>.self,
                                                             outboundType: AddressedEnvelope<ByteBuffer>.self))
                }
            }
        if host == "0.0.0.0" { await joinMulticastGroup(channel.channel) }
        logger.info("Answering discovery", metadata: ["port": "\(port)"])
        var limiter = ReplyLimiter()
        try await withGracefulShutdownHandler {
            try await channel.executeThenClose { inbound, outbound in
                for try await envelope in inbound {
                    guard envelope.data.readableBytes <= SADP.maximumDatagram,
                        let probe = SADP.Probe(xml: Data(buffer: envelope.data)),
                        limiter.allows(envelope.remoteAddress, at: .now)
                    else { continue }
                    let reply = await match(for: probe).xml
                    try await outbound.write(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(string: reply)))
                }
            }
        } onGracefulShutdown: {
            channel.channel.close(promise: nil)
        }
    }

    private func match(for probe: SADP.Probe) async -> SADP.ProbeMatch {
        let info = await device.info
        return SADP.ProbeMatch(
            uuid: probe.uuid, deviceType: info.deviceType.rawValue, deviceDescription: info.model, deviceSN: info.serial,
            mac: Self.mac(for: info.serial), ipv4Address: advertisedAddress, httpPort: await httpPort(),
            softwareVersion: info.firmware, activated: info.activated, passwordResetAbility: info.passwordResetAbility,
            signingKey: info.signingKey)
    }

    /// Multicast needs a route; where there is none (a bare test namespace) broadcast and unicast still work.
    private func joinMulticastGroup(_ channel: any Channel) async {
        guard let multicast = channel as? any MulticastChannel,
            let group = try? SocketAddress(ipAddress: SADP.multicastGroup, port: port)
        else { return }
        do {
            try await multicast.joinGroup(group).get()
        } catch {
            logger.notice("Multicast discovery unavailable here", metadata: ["error": "\(error)"])
        }
    }

    /// A stable, locally administered MAC derived from the serial: emulated devices have no hardware address.
    static func mac(for serial: String) -> String {
        var bytes = Array(SHA256.hash(data: Data(serial.utf8)).prefix(6))
        bytes[0] = (bytes[0] & 0xFC) | 0x02
        return bytes.map { String(format: "%02x", $0) }.joined(separator: "-")
    }
}

/// At most a few answers a second to any one address.
struct ReplyLimiter {
    static let perSecond = 5
    private var windows: [String: (start: ContinuousClock.Instant, count: Int)] = [:]

    mutating func allows(_ address: SocketAddress, at now: ContinuousClock.Instant) -> Bool {
        let key = address.ipAddress ?? "\(address)"
        if windows.count > 4096 { windows.removeAll() }
        if let window = windows[key], now - window.start < .seconds(1) {
            guard window.count < Self.perSecond else { return false }
            windows[key] = (window.start, window.count + 1)
        } else {
            windows[key] = (now, 1)
        }
        return true
    }
}
