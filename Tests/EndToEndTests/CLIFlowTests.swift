import Foundation
import LatchkeyProtocol
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The seed's whole procedure from a terminal: real `serve`, real `device`, real CLI.
@Suite("The reset from the CLI, end to end", .timeLimit(.minutes(5)))
struct CLIFlowTests {
    /// The owner's own reset: asked, approved and carried by the owner alone, on the device's LAN.
    @Test func theOwnersOwnReset() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let asked = try await world.owner(["reset", "request", "--device", world.serial, "--mode", "owner", "--yes", "--json"])
        #expect(asked.succeeded, "\(asked.text)")
        let request = try WireCoding.makeDecoder().decode(API.PasswordReset.self, from: Data(asked.output.utf8))
        #expect(request.mode == .owner)
        let approve = try await world.owner(["reset", "approve", request.id.uuidString, "--new-password-stdin"] + world.lan,
                                            input: "Mia2026own\n")
        #expect(approve.succeeded, "\(approve.text)")
        #expect(approve.output.contains("password reset successfully"))
        #expect(try await world.deviceLogin("Mia2026own") == 200)
        // Nobody else was asked: the installer's list and inbox do not have it.
        #expect(!(try await world.installer(["reset", "list"])).output.contains(request.id.uuidString))
        #expect(!(try await world.installer(["notifications", "--services"])).output.contains(request.id.uuidString))
        let asInstaller = try await world.installer(["reset", "request", "--device", world.serial, "--mode", "owner", "--yes"])
        #expect(!asInstaller.succeeded && asInstaller.text.contains("Only the device's owner"), "\(asInstaller.text)")

        // The history says who did it, and exports as a spreadsheet and jq read it.
        let history = try await world.owner(["audit", "--device", world.serial])
        #expect(history.output.contains("Laura Rossi") && history.output.contains("reset.requested"), "\(history.text)")
        let csv = try await world.owner(["audit", "--device", world.serial, "--format", "csv"])
        let spreadsheet = try await Self.tool("/usr/bin/python3", ["-c", """
            import csv, sys
            rows = list(csv.DictReader(sys.stdin))
            print(sum(1 for r in rows if r["action"] == "reset.completed" and r["request_id"] == sys.argv[1]), rows[0]["actor"])
            """, request.id.uuidString], input: csv.output)
        #expect(spreadsheet.hasPrefix("1 Laura Rossi"), "\(spreadsheet) from \(csv.text)")
        let json = try await world.owner(["audit", "--site", world.siteId, "--format", "json"])
        let jq = try await Self.tool("/usr/bin/jq", ["-r", "[.[] | select(.action == \"reset.requested\")] | .[-1].actorName"], input: json.output)
        #expect(jq.trimmingCharacters(in: .whitespacesAndNewlines) == "Laura Rossi", "\(jq) from \(json.text)")
        let refused = try await world.installer(["audit", "--site", world.siteId])
        #expect(!refused.succeeded && refused.text.contains("Only the site's owner"), "\(refused.text)")
        // The operator exports everything from the database.
        let export = try await Latchkey.run(["audit", "export", "--data-dir", world.scratch.folder("service").path])
        #expect(export.succeeded, "\(export.text)")
        let lines = export.output.split(separator: "\n")
        #expect(lines.count > 5 && lines.contains { $0.contains("\"account.created\"") } && lines.contains { $0.contains(request.id.uuidString) })
    }

    /// Runs a tool with `input` on its standard input; answers its standard output.
    static func tool(_ path: String, _ arguments: [String], input: String) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func offSite() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let devices = try await world.installer(["devices", "--site", world.siteId])
        #expect(devices.output.contains(world.serial) && devices.output.contains("online"))
        let id = try await world.request("off-site")
        let inbox = try await world.owner(["notifications", "--services"])
        #expect(inbox.output.contains("Reset device password"))
        #expect(inbox.output.contains(id))

        let weak = try await world.owner(["reset", "approve", id, "--new-password-stdin"] + world.lan, input: "admin123\n")
        #expect(!weak.succeeded)
        #expect(weak.text.contains("must not contain the user name"))
        #expect(try await world.owner(["reset", "status", id]).output.contains("pending"))

        let approve = try await world.owner(["reset", "approve", id, "--new-password-stdin"] + world.lan, input: "Nuova2026x\n")
        #expect(approve.succeeded, "\(approve.text)")
        #expect(approve.output.contains("password reset successfully"))
        #expect(try await world.deviceLogin("Nuova2026x") == 200)
        #expect(try await world.deviceLogin("Vecchia2023") == 401)
        for home in [world.ownerHome, world.installerHome] {
            let notices = try await Latchkey.run(["notifications", "--services"], home: home)
            #expect(notices.output.contains("Password reset successfully"))
        }
    }

    @Test func onSiteWithTheInstallerWatching() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let id = try await world.request("on-site")
        let watch = try Latchkey.Background(["reset", "watch", id, "--device-address", world.deviceAddress], home: world.installerHome)
        defer { watch.stop() }
        _ = try await watch.line(startingWith: "pending")
        let approve = try await world.owner(["reset", "approve", id, "--new-password-stdin"], input: "InSede2026!\n")
        #expect(approve.succeeded, "\(approve.text)")
        #expect(approve.output.contains("installer completes"))
        #expect(try await watch.exit() == 0)
        #expect(watch.text.contains("password reset successfully"))
        #expect(try await world.deviceLogin("InSede2026!") == 200)
    }

    /// Off-site, away from the device's LAN, the owner carries the reset with the presence code, in one run: the device
    /// shows a code only once the request is approved, so the CLI asks for it after approving, not before.
    @Test func theOwnerApprovesAndCarriesWithThePresenceCodeInOneRun() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let id = try await world.request("off-site")
        #expect(try await world.presenceCode() == nil, "no code before the approval")

        // A code typed before there can be one changes nothing: the request is still waiting for its approval.
        let early = try await world.owner(["reset", "approve", id, "--new-password-stdin", "--presence-code", "123456"],
                                          input: "Codice2026x\n")
        #expect(!early.succeeded && early.text.contains("--presence"), "\(early.text)")
        #expect(try await world.owner(["reset", "status", id]).output.contains("pending"))

        let approve = try Latchkey.Background(["reset", "approve", id, "--presence"], home: world.ownerHome, typing: true)
        defer { approve.stop() }
        _ = try await approve.line(containing: "New device password")
        approve.type("Codice2026x")
        _ = try await approve.line(containing: "Again")
        approve.type("Codice2026x")
        _ = try await approve.line(containing: "presence code")
        let code = try #require(try await world.presenceCode(), "the device shows a code once approved")
        approve.type(code)
        #expect(try await approve.exit() == 0, "\(approve.text)")
        #expect(approve.text.contains("password reset successfully"), "\(approve.text)")
        #expect(try await world.deviceLogin("Codice2026x") == 200)
    }

    @Test func declineCancelAndExpiryEachEndTheFlow() async throws {
        let world = try await World.start(onSiteWindow: "3s")
        defer { world.stop() }
        let declined = try await world.request("off-site")
        let watch = try Latchkey.Background(["reset", "watch", declined], home: world.installerHome)
        defer { watch.stop() }
        _ = try await watch.line(startingWith: "pending")
        #expect(try await world.owner(["reset", "decline", declined]).output.contains("Declined."))
        #expect(try await watch.exit() != 0)
        #expect(watch.text.contains("The owner declined the request."))

        let cancelled = try await world.request("off-site")
        #expect(try await world.installer(["reset", "cancel", cancelled]).output.contains("Cancelled."))
        #expect(try await world.owner(["reset", "status", cancelled]).output.contains("cancelled"))
        let late = try await world.owner(["reset", "approve", cancelled, "--new-password-stdin"] + world.lan, input: "Troppo2026x\n")
        #expect(!late.succeeded)
        #expect(late.text.contains("cancelled"))

        // The installer's list, like the portal's "My requests": all of them, or those with one status.
        let all = try await world.installer(["reset", "list"])
        #expect(all.succeeded && all.output.contains(declined) && all.output.contains(cancelled), "\(all.text)")
        let onlyCancelled = try await world.installer(["reset", "list", "--status", "cancelled", "--json"])
        let listed = try WireCoding.makeDecoder().decode([API.PasswordReset].self, from: Data(onlyCancelled.output.utf8))
        #expect(listed.map(\.id.uuidString) == [cancelled])
        let wrongStatus = try await world.installer(["reset", "list", "--status", "finished"])
        #expect(!wrongStatus.succeeded && wrongStatus.text.contains("--status must be one of"), "\(wrongStatus.text)")

        let expiring = try await world.request("on-site")
        let expiry = try await Latchkey.run(["reset", "watch", expiring], home: world.installerHome, timeout: .seconds(20))
        #expect(expiry.status != 0)
        #expect(expiry.text.contains("The request expired before it was completed."))
        #expect(try await world.deviceLogin("Vecchia2023") == 200)
    }

    @Test func withoutDiscoveryTheMessageSaysWhatToDo() async throws {
        let world = try await World.start()
        defer { world.stop() }
        let id = try await world.request("off-site")
        // Nothing answers on this port: the owner is not on the device's LAN.
        let run = try await world.owner(["reset", "approve", id, "--new-password-stdin", "--discovery-port", "9"], input: "Nuova2026x\n")
        #expect(!run.succeeded)
        #expect(run.text.contains("--device-address"))
        #expect(try await world.deviceLogin("Vecchia2023") == 200)
        // Back on the LAN, approving again carries the already approved request without asking for the password.
        let retry = try await world.owner(["reset", "approve", id] + world.lan)
        #expect(retry.succeeded, "\(retry.text)")
        #expect(retry.output.contains("password reset successfully"))
    }
}
