import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Hummingbird
import LatchkeyCloud
import LatchkeyProtocol
import NIOCore
import NIOPosix
import Testing

/// `latchkey device` as a separate process, as it runs beside a real service.
@Suite("latchkey device, the process", .timeLimit(.minutes(3)))
struct DeviceProcessTests {
    @Test func aProbeInSADPFormatFindsTheDevice() async throws {
        try await TestPlatform.run(.live) { app in
            // Below the range the system takes its own ports from (32768 and up), as the end-to-end tests draw theirs.
            let discoveryPort = Int.random(in: 10_000..<20_000)
            let device = try await DeviceProcess.start(cloudPort: try #require(app.client.port), discoveryPort: discoveryPort, now: app.clock.now)
            defer { device.stop() }
            #expect(device.output.contains("verification code: "))
            let uuid = UUID().uuidString
            let probe = #"<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>\#(uuid)</Uuid><Types>inquiry</Types></Probe>"#
            let reply = try #require(try await UDPProbe.send(Data(probe.utf8), to: discoveryPort, waitFor: .seconds(3)))

            // Read with the platform's plain XML parser, not with Latchkey's own decoder.
            let fields = try #require(PlainXMLFields.parse(reply))
            #expect(fields["Uuid"] == uuid)
            #expect(fields["Types"] == "inquiry")
            #expect(fields["DeviceSN"] == device.serial)
            #expect(fields["DeviceDescription"] == "DS-2CD2143G2-I")
            #expect(fields["SoftwareVersion"] == "V5.7.3")
            #expect(fields["IPv4Address"] == "127.0.0.1")
            #expect(fields["HttpPort"] == String(device.httpPort))
            #expect(fields["Activated"] == "true")
            #expect(fields["PasswordResetAbility"] == "true")
            #expect(fields["MAC"]?.count == 17)
            #expect(fields["DeviceType"] != nil)
            #expect(fields["lk:SigningKey"]?.isEmpty == false)

            // Malformed, oversized and non-inquiry datagrams get no answer at all.
            for junk in [Data("hello".utf8), Data(repeating: 0x41, count: 4000),
                         Data(#"<Probe><Uuid>x</Uuid><Types>update</Types></Probe>"#.utf8)] {
                #expect(try await UDPProbe.send(junk, to: discoveryPort, waitFor: .milliseconds(300)) == nil)
            }
            #expect(reply.count < 1400, "one datagram, no fragments")
        }
    }

    @Test func aFrozenDeviceGoesOfflineWithoutClosingItsChannel() async throws {
        try await TestPlatform.run(.live, configure: {
            $0.channelPingInterval = .milliseconds(500)
            $0.channelPingAnswerTimeout = .milliseconds(500)
        }) { app in
            let device = try await DeviceProcess.start(cloudPort: try #require(app.client.port), discoveryPort: 0, now: app.clock.now)
            defer { device.stop() }
            func online() async throws -> Bool {
                try await app.platform.store.read { [serial = device.serial] in try await $0.devices.find(serial: serial) }?.online ?? false
            }
            for _ in 0..<200 where try await !online() { try await Task.sleep(for: .milliseconds(25)) }
            #expect(try await online())
            // SIGSTOP: the process neither answers pings nor closes its socket, like a device that hung.
            device.freeze()
            let frozenAt = ContinuousClock.now
            while try await online(), ContinuousClock.now - frozenAt < .seconds(10) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await !online())
            // This node pings after 500 ms of silence; the service's defaults (75 s, then 15 s) make the same fall within 100 s.
            #expect(ContinuousClock.now - frozenAt < .seconds(5))
        }
    }
}

/// A `latchkey device` child process on loopback.
final class DeviceProcess: @unchecked Sendable {
    let process: Process
    let serial: String
    let httpPort: Int
    let stateDirectory: URL
    private let lines: LineCollector

    var output: String { lines.text }

    static var executable: URL {
        // The test bundle sits beside the package's products in the build folder.
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("latchkey").path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("latchkey")
    }

    static func start(cloudPort: Int, discoveryPort: Int, now: Date) async throws -> DeviceProcess {
        let serial = "CAM-\(UUID().uuidString.prefix(8))"
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("latchkey-process-\(UUID())")
        let identityFile = state.appendingPathExtension("identity.json")
        try TestManufacturer.trusted.issue(serial: serial, model: "DS-2CD2143G2-I", now: now).write(to: identityFile)
        let process = Process()
        process.executableURL = executable
        process.arguments = [
            "device", "--identity", identityFile.path, "--firmware", "V5.7.3", "--type", "camera",
            "--cloud", "http://127.0.0.1:\(cloudPort)", "--listen", "127.0.0.1:0", "--state-dir", state.path,
            "--admin-password", "Vecchia2023", "--discovery-port", String(discoveryPort),
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let lines = LineCollector()
        pipe.fileHandleForReading.readabilityHandler = { handle in lines.append(handle.availableData) }
        try process.run()
        var port: Int?
        for _ in 0..<400 where port == nil {
            port = lines.text.split(separator: "\n").first { $0.hasPrefix("listening: ") }
                .flatMap { $0.split(separator: ":").last.flatMap { Int($0) } }
            if port == nil { try await Task.sleep(for: .milliseconds(25)) }
        }
        guard let port else {
            process.terminate()
            throw DeviceProcessError(output: lines.text)
        }
        return DeviceProcess(process: process, serial: serial, httpPort: port, stateDirectory: state, lines: lines)
    }

    private init(process: Process, serial: String, httpPort: Int, stateDirectory: URL, lines: LineCollector) {
        self.process = process
        self.serial = serial
        self.httpPort = httpPort
        self.stateDirectory = stateDirectory
        self.lines = lines
    }

    func freeze() { kill(process.processIdentifier, SIGSTOP) }

    func stop() {
        kill(process.processIdentifier, SIGCONT)
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: stateDirectory)
        // The identity (with the device's private key) lies beside the state folder.
        try? FileManager.default.removeItem(at: stateDirectory.appendingPathExtension("identity.json"))
    }

    struct DeviceProcessError: Error { let output: String }

    final class LineCollector: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    }
}

/// Sends one datagram from an ephemeral loopback port and waits for one answer.
enum UDPProbe {
    static func send(_ payload: Data, to port: Int, waitFor timeout: Duration) async throws -> Data? {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                        configuration: .init(inboundType: AddressedEnvelope<ByteBuffer>.self,
                                                             outboundType: AddressedEnvelope<ByteBuffer>.self))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                                                       data: ByteBuffer(data: payload)))
            return try await withThrowingTaskGroup(of: Data?.self) { group in
                group.addTask {
                    for try await envelope in inbound { return Data(buffer: envelope.data) }
                    return nil
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
        }
    }
}

/// The child elements' text of an XML document's root, by qualified name, read with `XMLParser`.
final class PlainXMLFields: NSObject, XMLParserDelegate {
    private var fields: [String: String] = [:]
    private var element: String?
    private var text = ""

    static func parse(_ data: Data) -> [String: String]? {
        let reader = PlainXMLFields()
        let parser = XMLParser(data: data)
        parser.delegate = reader
        return parser.parse() ? reader.fields : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        element = qualifiedName ?? name
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if let element { fields[element] = text }
        element = nil
    }
}
