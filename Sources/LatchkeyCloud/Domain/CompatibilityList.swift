import Foundation
import LatchkeyProtocol
import Synchronization

/// The models Latchkey can reset and the first firmware of each that supports it, shipped as data.
public struct CompatibilityList: Sendable {
    public let entries: [API.CompatibilityEntry]
    private let minimumByModel: [String: FirmwareVersion]
    private let verdicts = Verdicts()

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
        switch verdict(model: model, firmware: firmware) {
        case .supported: return
        case .unknownModel: throw .deviceNotCompatible(model: model, firmware: firmware, minimumFirmware: nil)
        case .tooOld(let minimum): throw .deviceNotCompatible(model: model, firmware: firmware, minimumFirmware: minimum)
        }
    }

    public func supports(model: String, firmware: String) -> Bool {
        verdict(model: model, firmware: firmware) == .supported
    }

    private func verdict(model: String, firmware: String) -> Verdict {
        verdicts.remembered(model: model, firmware: firmware) {
            guard let minimum = minimumByModel[Self.key(model)] else { return .unknownModel }
            guard let version = FirmwareVersion(firmware), version >= minimum else { return .tooOld(minimum: minimum.description) }
            return .supported
        }
    }

    enum Verdict: Equatable, Sendable {
        case supported, unknownModel, tooOld(minimum: String)
    }

    /// Each model and firmware the service has judged, with its verdict: every device of a list says whether it can be
    /// reset, and reading a firmware version character by character was 3 % of the CPU of listing a site's devices (perf,
    /// issue 13). The list never changes while the service runs; the verdicts kept are bounded, as devices write the text.
    final class Verdicts: Sendable {
        static let limit = 4_096
        private let known = Mutex<[String: Verdict]>([:])

        func remembered(model: String, firmware: String, judge: () -> Verdict) -> Verdict {
            let key = model + "\u{0}" + firmware
            if let verdict = known.withLock({ $0[key] }) { return verdict }
            let verdict = judge()
            known.withLock { known in
                if known.count >= Self.limit { known.removeAll(keepingCapacity: true) }
                known[key] = verdict
            }
            return verdict
        }
    }

    private static func key(_ model: String) -> String {
        model.withoutSurroundingSpaces.uppercased()
    }
}
