import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// LAN discovery in SADP's XML inquiry format on UDP 37020, the format the field's devices and installer tools
/// already speak, so those tools find Latchkey devices and Latchkey's client finds theirs.
public enum SADP {
    public static let port = 37020
    public static let multicastGroup = "239.255.255.250"
    /// Latchkey's own elements in a ProbeMatch live in this namespace, so other tools ignore them.
    public static let latchkeyNamespace = "urn:latchkey:sadp:1"
    /// Datagrams beyond this are not SADP and are dropped unread.
    public static let maximumDatagram = 2048

    /// `<Probe><Uuid>…</Uuid><Types>inquiry</Types></Probe>`.
    public struct Probe: Sendable, Equatable {
        public var uuid: String
        public var types: String

        public init(uuid: String = UUID().uuidString, types: String = "inquiry") {
            self.uuid = uuid
            self.types = types
        }

        public var xml: String {
            #"<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>\#(escape(uuid))</Uuid><Types>\#(escape(types))</Types></Probe>"#
        }

        /// A well-formed inquiry, or nil for anything else.
        public init?(xml data: Data) {
            guard data.count <= SADP.maximumDatagram, let fields = FlatXML.parse(data), fields.root == "Probe",
                let uuid = fields.values["Uuid"], let types = fields.values["Types"], types == "inquiry",
                !uuid.isEmpty, uuid.count <= 64
            else { return nil }
            self.init(uuid: uuid, types: types)
        }
    }

    /// The answer to a probe: the usual SADP fields, plus Latchkey's own.
    public struct ProbeMatch: Sendable, Equatable {
        public var uuid: String
        public var deviceType: String
        public var deviceDescription: String
        public var deviceSN: String
        public var mac: String
        public var ipv4Address: String
        public var httpPort: Int
        public var softwareVersion: String
        public var activated: Bool
        public var passwordResetAbility: Bool
        /// Latchkey's: the device's Ed25519 key, base64url.
        public var signingKey: String?

        public init(uuid: String, deviceType: String, deviceDescription: String, deviceSN: String, mac: String,
                    ipv4Address: String, httpPort: Int, softwareVersion: String, activated: Bool,
                    passwordResetAbility: Bool, signingKey: String?) {
            self.uuid = uuid
            self.deviceType = deviceType
            self.deviceDescription = deviceDescription
            self.deviceSN = deviceSN
            self.mac = mac
            self.ipv4Address = ipv4Address
            self.httpPort = httpPort
            self.softwareVersion = softwareVersion
            self.activated = activated
            self.passwordResetAbility = passwordResetAbility
            self.signingKey = signingKey
        }

        public var xml: String {
            var lines = [
                #"<?xml version="1.0" encoding="UTF-8"?>"#,
                #"<ProbeMatch xmlns:lk="\#(SADP.latchkeyNamespace)">"#,
                "<Uuid>\(escape(uuid))</Uuid>",
                "<Types>inquiry</Types>",
                "<DeviceType>\(escape(deviceType))</DeviceType>",
                "<DeviceDescription>\(escape(deviceDescription))</DeviceDescription>",
                "<DeviceSN>\(escape(deviceSN))</DeviceSN>",
                "<MAC>\(escape(mac))</MAC>",
                "<IPv4Address>\(escape(ipv4Address))</IPv4Address>",
                "<HttpPort>\(httpPort)</HttpPort>",
                "<SoftwareVersion>\(escape(softwareVersion))</SoftwareVersion>",
                "<Activated>\(activated)</Activated>",
                "<PasswordResetAbility>\(passwordResetAbility)</PasswordResetAbility>",
            ]
            if let signingKey { lines.append("<lk:SigningKey>\(escape(signingKey))</lk:SigningKey>") }
            lines.append("</ProbeMatch>")
            return lines.joined(separator: "\n")
        }

        public init?(xml data: Data) {
            guard data.count <= 8192, let fields = FlatXML.parse(data), fields.root == "ProbeMatch",
                let uuid = fields.values["Uuid"], let serial = fields.values["DeviceSN"],
                let address = fields.values["IPv4Address"], let port = fields.values["HttpPort"].flatMap(Int.init)
            else { return nil }
            self.init(
                uuid: uuid, deviceType: fields.values["DeviceType"] ?? "", deviceDescription: fields.values["DeviceDescription"] ?? "",
                deviceSN: serial, mac: fields.values["MAC"] ?? "", ipv4Address: address, httpPort: port,
                softwareVersion: fields.values["SoftwareVersion"] ?? "", activated: fields.values["Activated"] == "true",
                passwordResetAbility: fields.values["PasswordResetAbility"] == "true", signingKey: fields.values["lk:SigningKey"])
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// Reads a one-level XML document (a root and its text children) with the platform's XML parser.
final class FlatXML: NSObject, XMLParserDelegate {
    private(set) var root: String?
    private(set) var values: [String: String] = [:]
    private var depth = 0
    private var current: String?
    private var text = ""
    private var valid = true

    static func parse(_ data: Data) -> FlatXML? {
        let reader = FlatXML()
        let parser = XMLParser(data: data)
        parser.delegate = reader
        parser.shouldResolveExternalEntities = false
        guard parser.parse(), reader.valid, reader.root != nil else { return nil }
        return reader
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        depth += 1
        if depth == 1 { root = name } else if depth == 2 { current = name; text = "" } else { valid = false }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if depth == 2 { text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if depth == 2, let current { values[current] = text.trimmingCharacters(in: .whitespacesAndNewlines) }
        depth -= 1
    }
}
