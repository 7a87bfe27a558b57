import Foundation
import LatchkeyProtocol

/// The manufacturer whose devices the tests' platforms trust, and one they do not.
enum TestManufacturer {
    static let trusted = try! ManufacturerAuthority.create(name: "Test Devices")
    static let stranger = try! ManufacturerAuthority.create(name: "Someone Else's Devices")
}
