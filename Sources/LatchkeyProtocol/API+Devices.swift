import Foundation

extension API {
    /// A device on a site, with whether it is connected and whether Latchkey can reset it.
    public struct Device: Codable, Sendable, Equatable {
        public var serial: String
        public var model: String
        public var deviceType: DeviceType
        public var firmware: String
        public var siteId: UUID?
        public var online: Bool
        public var compatible: Bool

        public init(
            serial: String, model: String, deviceType: DeviceType, firmware: String, siteId: UUID?, online: Bool,
            compatible: Bool
        ) {
            self.serial = serial
            self.model = model
            self.deviceType = deviceType
            self.firmware = firmware
            self.siteId = siteId
            self.online = online
            self.compatible = compatible
        }
    }

    /// One row of the compatibility list: a model and the first firmware that supports the reset.
    public struct CompatibilityEntry: Codable, Sendable, Equatable {
        public var model: String
        public var deviceType: DeviceType
        public var minFirmware: String

        public init(model: String, deviceType: DeviceType, minFirmware: String) {
            self.model = model
            self.deviceType = deviceType
            self.minFirmware = minFirmware
        }
    }

    /// One line of a device's audit history: who did what, when, with what outcome.
    public struct AuditEntry: Codable, Sendable, Equatable {
        public var sequence: Int
        public var at: Date
        public var actorId: UUID?
        /// The actor's name as it is now, for people reading the export.
        public var actorName: String?
        public var siteId: UUID?
        public var deviceSerial: String?
        public var requestId: UUID?
        public var action: String
        public var outcome: String
        public var detail: String?

        public init(
            sequence: Int, at: Date, actorId: UUID?, actorName: String? = nil, siteId: UUID? = nil, deviceSerial: String?,
            requestId: UUID?, action: String, outcome: String, detail: String?
        ) {
            self.sequence = sequence
            self.at = at
            self.actorId = actorId
            self.actorName = actorName
            self.siteId = siteId
            self.deviceSerial = deviceSerial
            self.requestId = requestId
            self.action = action
            self.outcome = outcome
            self.detail = detail
        }
    }
}
