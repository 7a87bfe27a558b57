import Foundation
import LatchkeyProtocol

/// What went wrong talking to the service or a device, typed so an app can react to each case.
public enum ClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The service or the device refused, with its stable code.
    case refused(status: Int, code: APIErrorCode, message: String)
    /// Nothing answered: wrong address, service down, or (for a device) not on this LAN.
    case unreachable(String)
    /// An answer that is not what the contract says.
    case unexpectedAnswer(String)
    /// No device answered discovery on this LAN.
    case deviceNotFound(serial: String)
    /// The new password breaks the device password policy: checked before anything is sent.
    case weakPassword(String)
    case notSignedIn
    /// The device's key is not certified by a manufacturer this app trusts, or the device did not prove it: nothing
    /// was sealed or delivered.
    case untrustedDevice(String)
    /// The service's TLS certificate is not signed by a CA this app trusts.
    case untrustedServer(String)

    public var description: String {
        switch self {
        case .refused(_, _, let message): message
        case .unreachable(let what): what
        case .unexpectedAnswer(let what): "Unexpected answer: \(what)"
        case .deviceNotFound(let serial):
            "Device \(serial) did not answer discovery on this network. Make sure this computer is on the device's LAN; "
                + "where VLANs, client isolation or IGMP snooping block discovery, give the device's address with "
                + "--device-address HOST:PORT."
        case .weakPassword(let reason): reason
        case .notSignedIn: "Not signed in: run `latchkey login --email … --password-stdin` first."
        case .untrustedDevice(let what): what
        case .untrustedServer(let what): what
        }
    }

    public var code: APIErrorCode? {
        if case .refused(_, let code, _) = self { return code }
        return nil
    }
}
