import ArgumentParser

/// The one `latchkey` executable: the service now; device, client and reset commands arrive with their issues.
@main
struct Latchkey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latchkey",
        abstract: "Owner-approved password reset for security devices.",
        subcommands: [Serve.self, DeviceCommand.self]
    )
}
