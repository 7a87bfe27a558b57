import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LatchkeyProtocol
import Testing

/// `serve` (and the device) killed with SIGKILL at each step of a reset and started again: nothing is lost, the reset
/// completes, the device applies it once, and both sides are told the true outcome.
@Suite("Crashes at every step", .timeLimit(.minutes(5)))
struct CrashTests {
    /// The processes of one world that the test kills and starts again.
    final class Processes: @unchecked Sendable {
        let world: World
        var service: Latchkey.Background
        var device: Latchkey.Background

        init(_ world: World) {
            self.world = world
            service = world.service
            device = world.device
        }

        func killService() {
            kill(service.process.processIdentifier, SIGKILL)
            service.process.waitUntilExit()
        }

        func startService() async throws {
            service = try Latchkey.Background(world.serviceArguments)
            try await World.waitForHealth(world.server)
        }

        func crashService() async throws {
            killService()
            try await startService()
        }

        func crashDevice() async throws {
            kill(device.process.processIdentifier, SIGKILL)
            device.process.waitUntilExit()
            device = try Latchkey.Background(world.deviceArguments)
            _ = try await device.line(startingWith: "listening: ")
        }

        func stop() {
            device.stop()
            service.stop()
        }
    }

    /// JSON over HTTP to the service or to the device's local API, as the SDK sends it.
    static func post(_ url: String, token: String? = nil, body: some Encodable) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = try WireCoding.makeEncoder().encode(body)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    static func token(in home: URL) throws -> String {
        struct Saved: Decodable { var token: String }
        return try JSONDecoder().decode(Saved.self, from: Data(contentsOf: home.appendingPathComponent("credentials.json"))).token
    }

    static func status(_ id: String, in world: World) async throws -> String {
        let run = try await world.owner(["reset", "status", id, "--json"])
        return (try? WireCoding.makeDecoder().decode(API.PasswordReset.self, from: Data(run.output.utf8)).status.rawValue) ?? run.text
    }

    static func waitForStatus(_ expected: String, _ id: String, in world: World, within limit: Duration = .seconds(30)) async throws -> String {
        let started = ContinuousClock.now
        var seen = ""
        while ContinuousClock.now - started < limit {
            seen = try await status(id, in: world)
            if seen == expected { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        return seen
    }

    /// Up to the grant: asked, approved, proof and grant taken by the installer, the service killed after each step.
    static func approvedAndGranted(_ world: World, _ processes: Processes) async throws -> (id: String, apply: LocalAPI.ApplyReset) {
        let id = try await world.request("on-site")
        try await processes.crashService()
        #expect(try await status(id, in: world) == "pending", "the request survives a crash right after it was made")

        let approve = try await world.owner(["reset", "approve", id, "--new-password-stdin"], input: "Nuova2026x\n")
        #expect(approve.succeeded, "\(approve.text)")
        try await processes.crashService()
        #expect(try await status(id, in: world) == "approved", "the approval survives a crash")

        let (challenged, proofData) = try await post("http://\(world.deviceAddress)/local/v1/challenge", body: [String: String]())
        #expect(challenged == 200)
        let proof = try WireCoding.makeDecoder().decode(ProximityProof.self, from: proofData)
        let (granted, grantData) = try await post("\(world.server)/api/v1/password-resets/\(id)/grant", token: try token(in: world.installerHome),
                                                  body: API.GrantRequest(proximityProof: proof))
        #expect(granted == 200, "\(String(decoding: grantData, as: UTF8.self))")
        let grant = try WireCoding.makeDecoder().decode(API.Grant.self, from: grantData)
        try await processes.crashService()
        return (id, LocalAPI.ApplyReset(grant: grant.grant, sealedPassword: grant.sealedPassword))
    }

    @Test func theServiceKilledAtEveryStepLosesNothingAndAppliesNothingTwice() async throws {
        let world = try await World.start()
        let processes = Processes(world)
        defer {
            processes.stop()
            world.stop()
        }
        let (id, apply) = try await Self.approvedAndGranted(world, processes)

        // The device applies while the service is down: the receipt cannot reach it now, by either path.
        processes.killService()
        let (applied, receiptData) = try await Self.post("http://\(world.deviceAddress)/local/v1/password-reset", body: apply)
        #expect(applied == 200, "\(String(decoding: receiptData, as: UTF8.self))")
        try await processes.startService()
        // The device reports the receipt it kept over its channel as soon as it is back; the courier's own copy counts once.
        #expect(try await Self.waitForStatus("completed", id, in: world) == "completed")
        let receipt = try WireCoding.makeDecoder().decode(ResetReceipt.self, from: receiptData)
        let (delivered, _) = try await Self.post("\(world.server)/api/v1/password-resets/\(id)/receipt", token: try Self.token(in: world.installerHome),
                                            body: API.ReceiptDelivery(receipt: receipt))
        #expect(delivered == 200)

        // Never twice: the same grant is refused, and the password is the new one.
        let (again, _) = try await Self.post("http://\(world.deviceAddress)/local/v1/password-reset", body: apply)
        #expect(again == 403)
        #expect(try await world.deviceLogin("Nuova2026x") == 200)
        for home in [world.ownerHome, world.installerHome] {
            let notices = try await Latchkey.run(["notifications", "--services"], home: home)
            #expect(notices.output.components(separatedBy: "Password reset successfully").count == 2, "told once: \(notices.output)")
        }
    }

    @Test func theDeviceKilledRightAfterApplyingStillTellsThePlatform() async throws {
        let world = try await World.start()
        let processes = Processes(world)
        defer {
            processes.stop()
            world.stop()
        }
        let (id, apply) = try await Self.approvedAndGranted(world, processes)
        processes.killService()
        let (applied, _) = try await Self.post("http://\(world.deviceAddress)/local/v1/password-reset", body: apply)
        #expect(applied == 200)
        // Killed before it could report anything, and nobody carries the receipt: the device kept it.
        try await processes.crashDevice()
        try await processes.startService()
        #expect(try await Self.waitForStatus("completed", id, in: world) == "completed")
        #expect(try await world.deviceLogin("Nuova2026x") == 200)
        let (again, _) = try await Self.post("http://\(world.deviceAddress)/local/v1/password-reset", body: apply)
        #expect(again == 403, "a restarted device does not apply the same grant again")
        let notices = try await world.owner(["notifications", "--services"])
        #expect(notices.output.contains("Password reset successfully"))
    }
}
