import Foundation
import LatchkeyProtocol

/// The models Latchkey can reset and the first firmware of each that supports it, shipped as data.
public struct CompatibilityList: Sendable {
    public let entries: [API.CompatibilityEntry]
    private let minimumByModel: [String: FirmwareVersion]

    public init(entries: [API.CompatibilityEntry]) throws {
        var minimumByModel: [String: FirmwareVersion] = [:]
        for entry in entries {
            guard let version = FirmwareVersion(entry.minFirmware) else {
                throw LatchkeyError.invalidRequest("Compatibility list: '\(entry.minFirmware)' of \(entry.model) is not a version.")
            }
            minimumByModel[Self.key(entry.model)] = version
        }
        self.entries = entries.sorted { $0.model < $1.model }
        self.minimumByModel = minimumByModel
    }

    /// The list bundled with the service (`Resources/compatibility.json`).
    public static func bundled() throws -> CompatibilityList {
        guard let url = Bundle.module.url(forResource: "compatibility", withExtension: "json") else {
            throw LatchkeyError.notFound("The bundled compatibility list is missing.")
        }
        let entries = try WireCoding.makeDecoder().decode([API.CompatibilityEntry].self, from: Data(contentsOf: url))
        return try CompatibilityList(entries: entries)
    }

    /// Entries whose model contains the text, case-insensitively.
    public func search(_ text: String?) -> [API.CompatibilityEntry] {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return entries }
        return entries.filter { $0.model.localizedCaseInsensitiveContains(text) }
    }

    /// Throws `deviceNotCompatible` naming the model, its firmware and the minimum needed.
    public func checkSupports(model: String, firmware: String) throws(LatchkeyError) {
        guard let minimum = minimumByModel[Self.key(model)] else {
            throw .deviceNotCompatible(model: model, firmware: firmware, minimumFirmware: nil)
        }
        guard let version = FirmwareVersion(firmware), version >= minimum else {
            throw .deviceNotCompatible(model: model, firmware: firmware, minimumFirmware: minimum.description)
        }
    }

    public func supports(model: String, firmware: String) -> Bool {
        (try? checkSupports(model: model, firmware: firmware)) != nil
    }

    private static func key(_ model: String) -> String {
        model.withoutSurroundingSpaces.uppercased()
    }
}
