import ArgumentParser
import Foundation
import LatchkeyProtocol

/// `latchkey manufacturer`: a manufacturer's certificate authority, and the identities it gives devices at manufacture.
struct Manufacturer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a manufacturer CA and issue device identities (keys, certificate chain, label code).",
        subcommands: [Init.self, Issue.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a manufacturer CA: a root and an intermediate that signs device certificates.")

        @Option(help: "The manufacturer's name, written into its certificates.") var name = "Latchkey Demo Devices"
        @Option(help: "The folder for authority.json (private keys, mode 0600) and roots.pem (for the platform).") var out: String

        func run() throws {
            let folder = URL(fileURLWithPath: out)
            guard !FileManager.default.fileExists(atPath: folder.appendingPathComponent("authority.json").path) else {
                throw ValidationError("\(out) already holds a manufacturer CA; choose another --out.")
            }
            try ManufacturerAuthority.create(name: name).save(in: folder)
            say("authority: \(folder.appendingPathComponent("authority.json").path)  (private keys: keep it safe)")
            say("roots: \(folder.appendingPathComponent("roots.pem").path)  (give it to the platform: latchkey serve --manufacturer-roots)")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue one device identity: its keys, its certificate chain and the code printed on its label.")

        @Option(help: "The manufacturer CA folder made by `latchkey manufacturer init`.") var authority: String
        @Option(help: "The device's serial number.") var serial: String
        @Option(help: "The device's model (e.g. DS-7608NI-K2).") var model: String
        @Option(name: .customLong("label-code"), help: "The six letters for the label (else chosen at random).") var labelCode: String?
        @Option(name: .customLong("platform-key"),
                help: "The platform's Ed25519 key (base64url, the `x` of GET /api/v1/keys) to pin at manufacture.")
        var platformKey: String?
        @Option(help: "Where to write the identity file (mode 0600).") var out: String

        func run() throws {
            let authority = try ManufacturerAuthority.load(from: URL(fileURLWithPath: self.authority))
            let identity: DeviceIdentityFile
            do {
                identity = try authority.issue(serial: serial, model: model, labelCode: labelCode?.uppercased(), platformKey: platformKey)
            } catch let error as AttestationError {
                throw ValidationError(error.description)
            }
            try identity.write(to: URL(fileURLWithPath: out))
            say("identity: \(out)")
            say("serial: \(identity.serial)")
            say("verification code: \(identity.labelCode)")
        }
    }
}
