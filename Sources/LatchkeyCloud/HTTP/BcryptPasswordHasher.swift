import HummingbirdBcrypt
import NIOPosix

/// bcrypt on the blocking thread pool, so hashing never stalls an event loop.
struct BcryptPasswordHasher: PasswordHasher {
    let cost: UInt8
    /// A hash of a password nobody has, at the same cost, for sign-ins with an unknown e-mail.
    let decoy: String

    init(cost: UInt8) {
        self.cost = cost
        self.decoy = Bcrypt.hash("no account has this password", cost: cost)
    }

    func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { [cost] in Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, against hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    func verifyDecoy(_ password: String) async {
        _ = try? await verify(password, against: decoy)
    }
}
