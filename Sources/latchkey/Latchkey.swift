import ArgumentParser

/// The one `latchkey` executable: the service, the device emulator, and the owner's and installer's app.
@main
struct Latchkey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latchkey",
        abstract: "Owner-approved password reset for security devices.",
        subcommands: [
            Serve.self, DeviceCommand.self, Manufacturer.self, SignUp.self, Login.self, Logout.self, Sites.self, Devices.self, Compat.self,
            Discover.self, Authorize.self, Revoke.self, Bind.self, Reset.self, Notifications.self, Audit.self,
        ]
    )
}
