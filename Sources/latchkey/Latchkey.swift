import ArgumentParser
import NIOCore
import NIOPosix

/// Starts `latchkey`. The service runs its tasks on the threads that serve its sockets (NIO's event loops become Swift's
/// global executor): otherwise every request crossed between two pools of threads several times, which cost a hot read
/// on SQLite about a fifth of its CPU (issue 13; the benchmark's `--compare-executors`). It must be done before any
/// task starts, hence here.
@main
enum Entry {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "serve", !arguments.contains("--\(Serve.separateExecutorFlag)") {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        await Latchkey.main()
    }
}

/// The one `latchkey` executable: the service, the device emulator, and the owner's and installer's app.
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
