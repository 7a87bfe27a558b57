import Foundation

/// The admin password rule the field's devices enforce. The owner's client checks it before sealing, and the device
/// checks it again after opening the seal, because only the device ever sees the clear password.
public struct PasswordPolicy: Sendable {
    /// Why a password was refused, in words that tell the owner what to change.
    public enum Violation: Error, Sendable, Equatable, CustomStringConvertible {
        case tooShort(minimum: Int)
        case tooLong(maximum: Int)
        case tooFewCharacterKinds(required: Int)
        case containsUsername(String)
        case containsReversedUsername(String)

        public var description: String {
            switch self {
            case .tooShort(let minimum): "The password must have at least \(minimum) characters."
            case .tooLong(let maximum): "The password must have at most \(maximum) characters."
            case .tooFewCharacterKinds(let required):
                "The password must mix at least \(required) of: lower case, upper case, digits, symbols."
            case .containsUsername(let name): "The password must not contain the user name '\(name)'."
            case .containsReversedUsername(let name): "The password must not contain the user name '\(name)' reversed."
            }
        }
    }

    public var minimumLength: Int
    public var maximumLength: Int
    public var requiredCharacterKinds: Int

    /// 8–16 characters, two kinds of characters, not the user name forwards or backwards.
    public static let device = PasswordPolicy(minimumLength: 8, maximumLength: 16, requiredCharacterKinds: 2)

    public init(minimumLength: Int, maximumLength: Int, requiredCharacterKinds: Int) {
        self.minimumLength = minimumLength
        self.maximumLength = maximumLength
        self.requiredCharacterKinds = requiredCharacterKinds
    }

    /// Throws the first rule the password breaks.
    public func check(_ password: String, username: String = "admin") throws(Violation) {
        if password.count < minimumLength { throw .tooShort(minimum: minimumLength) }
        if password.count > maximumLength { throw .tooLong(maximum: maximumLength) }
        var kinds = 0
        if password.contains(where: \.isLowercase) { kinds += 1 }
        if password.contains(where: \.isUppercase) { kinds += 1 }
        if password.contains(where: \.isNumber) { kinds += 1 }
        if password.contains(where: { !$0.isLetter && !$0.isNumber }) { kinds += 1 }
        if kinds < requiredCharacterKinds { throw .tooFewCharacterKinds(required: requiredCharacterKinds) }
        let lowered = password.lowercased()
        let name = username.lowercased()
        guard !name.isEmpty else { return }
        if lowered.contains(name) { throw .containsUsername(username) }
        if lowered.contains(String(name.reversed())) { throw .containsReversedUsername(username) }
    }
}
