import AsyncHTTPClient
import Foundation
import LatchkeyProtocol
import NIOHTTP1

/// A device's local API, reached on its LAN: only something there can get a proximity proof from it.
public struct DeviceLink: Sendable {
    public let address: String
    let transport: HTTPTransport

    /// `address` is `HOST:PORT`, as discovery answers or `--device-address` gives it.
    public init(address: String, httpClient: HTTPClient = .shared) {
        self.address = address
        self.transport = HTTPTransport(baseURL: "http://\(address)\(LocalAPI.pathPrefix)", client: httpClient, timeout: .seconds(5), peer: .device)
    }

    public func info() async throws(ClientError) -> LocalAPI.Info {
        try await transport.send(.GET, "/info")
    }

    public func challenge() async throws(ClientError) -> ProximityProof {
        try await transport.send(.POST, "/challenge")
    }

    public func applyReset(grant: String, sealedPassword: String) async throws(ClientError) -> ResetReceipt {
        try await transport.send(.POST, "/password-reset", body: LocalAPI.ApplyReset(grant: grant, sealedPassword: sealedPassword))
    }

    public func login(username: String = "admin", password: String) async throws(ClientError) -> LocalAPI.Session {
        try await transport.send(.POST, "/login", body: LocalAPI.Login(username: username, password: password))
    }
}

/// The LAN part of a reset, done by whichever app is the courier: find the device, get its proximity proof, trade it
/// for the platform's grant, hand grant and sealed password to the device, and report its receipt.
public struct ResetCourier: Sendable {
    public let client: LatchkeyClient
    public let discovery: LANDiscovery
    let httpClient: HTTPClient

    public init(client: LatchkeyClient, discovery: LANDiscovery = LANDiscovery(), httpClient: HTTPClient = .shared) {
        self.client = client
        self.discovery = discovery
        self.httpClient = httpClient
    }

    /// Finds the device on this LAN, or uses `deviceAddress` when discovery cannot work here.
    public func link(to serial: String, deviceAddress: String? = nil) async throws(ClientError) -> DeviceLink {
        if let deviceAddress { return DeviceLink(address: deviceAddress, httpClient: httpClient) }
        let found: [DiscoveredDevice]
        do { found = try await discovery.discover() } catch { throw .unreachable("Discovery failed on this network: \(error)") }
        guard let device = found.first(where: { $0.serial == serial }) else { throw .deviceNotFound(serial: serial) }
        return DeviceLink(address: device.address, httpClient: httpClient)
    }

    /// Carries an approved request to the device and returns the completed request.
    public func carry(_ request: API.PasswordReset, deviceAddress: String? = nil) async throws(ClientError) -> API.PasswordReset {
        let certified = try await client.certifiedDevice(request.deviceSerial)
        let device = try await link(to: request.deviceSerial, deviceAddress: deviceAddress)
        let proof: ProximityProof
        do {
            proof = try await device.challenge()
        } catch .unreachable {
            throw .unreachable("Device \(request.deviceSerial) at \(device.address) did not answer: this computer must be on the device's LAN.")
        }
        guard proof.serial == request.deviceSerial else {
            throw .unexpectedAnswer("the device at \(device.address) is \(proof.serial), not \(request.deviceSerial)")
        }
        // The password was sealed to the certified key: deliver it only to the device that proves it holds it.
        guard proof.isSigned(by: certified.signingKey) else {
            throw .untrustedDevice(
                "The device at \(device.address) did not prove it holds the key its manufacturer certified for "
                    + "\(request.deviceSerial): nothing was delivered.")
        }
        let grant = try await client.grant(request.id, proof: proof)
        let receipt = try await device.applyReset(grant: grant.grant, sealedPassword: grant.sealedPassword)
        do {
            return try await client.deliverReceipt(receipt)
        } catch {
            // The device applied the reset and reports the receipt on its own channel: nothing is lost.
            if case .refused = error { throw error }
            return try await client.reset(request.id)
        }
    }
}
