import Foundation
@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

@Suite("Reset request lifecycle (domain)", .timeLimit(.minutes(3)))
struct PasswordResetRequestTests {
    let owner = UUID()
    let installer = UUID()
    let stranger = UUID()
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func request(_ mode: ResetMode) -> PasswordResetRequest {
        let site = Site(id: UUID(), ownerId: owner, name: "Bar", address: nil, createdAt: start)
        let device = Device(serial: "S1", model: "DS-7608NI-K2", deviceType: .nvr, firmware: "V4.62.200", siteId: site.id, online: true)
        return .open(device: device, site: site, installerId: installer, mode: mode, windows: .standard, at: start)
    }

    @Test func offSiteLastsTwentyFourHoursAndOnSiteFiveMinutes() {
        #expect(request(.offSite).expiresAt == start + 24 * 3600)
        #expect(request(.onSite).expiresAt == start + 5 * 60)
        #expect(request(.offSite).courierId == owner)
        #expect(request(.onSite).courierId == installer)
    }

    @Test func readsAsExpiredOnceTheWindowClosesWithoutAnythingWritten() {
        let onSite = request(.onSite)
        #expect(onSite.status(at: start + 299) == .pending)
        #expect(onSite.status(at: start + 300) == .expired)
        #expect(onSite.storedStatus == .pending)
    }

    @Test func onlyTheOwnerApprovesAndTheSealIsKeptAsGiven() throws {
        var pending = request(.offSite)
        #expect(throws: LatchkeyError.self) { try pending.approve(by: installer, sealedPassword: sampleSealedPassword, at: start) }
        #expect(throws: LatchkeyError.self) { try pending.approve(by: stranger, sealedPassword: sampleSealedPassword, at: start) }
        try pending.approve(by: owner, sealedPassword: sampleSealedPassword, at: start + 60)
        #expect(pending.storedStatus == .approved)
        #expect(pending.sealedPassword == sampleSealedPassword)
    }

    @Test func aClearPasswordIsNeverAcceptedAsASeal() {
        var pending = request(.offSite)
        for clear in ["Passw0rd!", "", "aGVsbG8gd29ybGQ", String(repeating: "A", count: 5000)] {
            #expect(throws: LatchkeyError.self) { try pending.approve(by: owner, sealedPassword: clear, at: start) }
        }
        #expect(pending.storedStatus == .pending)
        #expect(pending.sealedPassword == nil)
    }

    @Test func approvingAfterExpiryAnswersExpired() {
        var onSite = request(.onSite)
        #expect(throws: LatchkeyError.requestExpired(id: onSite.id)) {
            try onSite.approve(by: owner, sealedPassword: sampleSealedPassword, at: start + 301)
        }
    }

    @Test func approvingTwiceIsRefusedAsNotPending() throws {
        var pending = request(.offSite)
        try pending.approve(by: owner, sealedPassword: sampleSealedPassword, at: start)
        #expect(throws: LatchkeyError.requestNotPending(id: pending.id, status: .approved)) {
            try pending.approve(by: owner, sealedPassword: sampleSealedPassword, at: start + 1)
        }
    }

    @Test func declineWithdrawsAnApprovalAndForgetsTheSeal() throws {
        var pending = request(.offSite)
        try pending.approve(by: owner, sealedPassword: sampleSealedPassword, at: start)
        #expect(throws: LatchkeyError.self) { try pending.decline(by: installer, at: start) }
        try pending.decline(by: owner, at: start + 10)
        #expect(pending.storedStatus == .declined)
        #expect(pending.sealedPassword == nil)
        #expect(throws: LatchkeyError.requestNotPending(id: pending.id, status: .declined)) { try pending.cancel(by: installer, at: start + 11) }
    }

    @Test func onlyTheRequestingInstallerCancels() throws {
        var pending = request(.onSite)
        #expect(throws: LatchkeyError.self) { try pending.cancel(by: owner, at: start) }
        #expect(throws: LatchkeyError.self) { try pending.cancel(by: stranger, at: start) }
        try pending.cancel(by: installer, at: start + 1)
        #expect(pending.status(at: start + 1000) == .cancelled)
    }

    @Test func expireWritesOnlyWhatIsDue() {
        var pending = request(.onSite)
        pending.expire(at: start + 10)
        #expect(pending.storedStatus == .pending)
        pending.expire(at: start + 300)
        #expect(pending.storedStatus == .expired)
        #expect(pending.updatedAt == start + 300)
    }
}

@Suite("Domain rules", .timeLimit(.minutes(3)))
struct DomainRuleTests {
    @Test func ownerEmailIsMaskedAsTheInstallerAppShowsIt() {
        #expect(EmailMask.mask("lmrossi@gmail.com") == "lm...@gmail.com")
        #expect(EmailMask.mask("ab@x.it") == "a...@x.it")
        #expect(EmailMask.mask("a@x.it") == "a...@x.it")
    }

    @Test func compatibilityComparesVersionsNotStrings() throws {
        let list = try CompatibilityList(entries: [.init(model: "DS-2CD2143G2-I", deviceType: .camera, minFirmware: "V5.9.2")])
        #expect(list.supports(model: "DS-2CD2143G2-I", firmware: "V5.10.0"))
        #expect(list.supports(model: "ds-2cd2143g2-i", firmware: "V5.9.2 build 230101"))
        #expect(!list.supports(model: "DS-2CD2143G2-I", firmware: "V5.9.1"))
        #expect(throws: LatchkeyError.deviceNotCompatible(model: "DS-2CD2143G2-I", firmware: "V5.5.0", minimumFirmware: "V5.9.2")) {
            try list.checkSupports(model: "DS-2CD2143G2-I", firmware: "V5.5.0")
        }
        #expect(throws: LatchkeyError.deviceNotCompatible(model: "XYZ", firmware: "V9", minimumFirmware: nil)) {
            try list.checkSupports(model: "XYZ", firmware: "V9")
        }
    }

    /// Verdicts are remembered: asked again, and past the number kept, each still answers as first judged.
    @Test func rememberedVerdictsAnswerAsTheFirst() throws {
        let list = try CompatibilityList(entries: [.init(model: "DS-2CD2143G2-I", deviceType: .camera, minFirmware: "V5.9.2")])
        for round in 0..<2 {
            for minor in 0..<(CompatibilityList.Verdicts.limit + 100) {
                let firmware = "V5.\(minor % 20).\(minor)"
                #expect(list.supports(model: "DS-2CD2143G2-I", firmware: firmware) == (minor % 20 >= 10 || (minor % 20 == 9 && minor >= 2)),
                        "\(firmware), round \(round)")
            }
            #expect(throws: LatchkeyError.deviceNotCompatible(model: "DS-2CD2143G2-I", firmware: "V5.5.0", minimumFirmware: "V5.9.2")) {
                try list.checkSupports(model: "DS-2CD2143G2-I", firmware: "V5.5.0")
            }
            #expect(throws: LatchkeyError.deviceNotCompatible(model: "XYZ", firmware: "V9", minimumFirmware: nil)) {
                try list.checkSupports(model: "XYZ", firmware: "V9")
            }
        }
    }

    @Test func theBundledListLoadsAndCoversEveryDeviceType() throws {
        let list = try CompatibilityList.bundled()
        #expect(Set(list.entries.map(\.deviceType)) == Set(DeviceType.allCases))
        #expect(list.search("7608").map(\.model) == ["DS-7608NI-K2"])
    }

    @Test func authorizationsGrantNothingAfterTheirExpiry() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let authorization = SiteAuthorization(siteId: UUID(), installerId: UUID(), permissions: [.passwordReset],
                                              expiresAt: now + 60, createdAt: now)
        #expect(authorization.allows(.passwordReset, at: now + 59))
        #expect(!authorization.allows(.passwordReset, at: now + 60))
        #expect(!authorization.allows(.configure, at: now))
    }

    @Test func aDeviceSilentForThirtySecondsIsOffline() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let device = Device(serial: "S", model: "M", deviceType: .camera, firmware: "V1", siteId: nil, online: true, lastSeenAt: now)
        #expect(device.isOnline(at: now + 29))
        #expect(!device.isOnline(at: now + 30))
        var closed = device
        closed.online = false
        #expect(!closed.isOnline(at: now))
    }

    @Test func accountFieldsAreCheckedBeforeStorage() throws {
        #expect(try AccountRules.normalizedEmail("  Laura.Rossi@Gmail.COM ") == "laura.rossi@gmail.com")
        for bad in ["", "no-at", "a@b", "@x.it", "a b@x.it", String(repeating: "a", count: 250) + "@x.it"] {
            #expect(throws: LatchkeyError.self) { try AccountRules.normalizedEmail(bad) }
        }
        #expect(throws: LatchkeyError.self) { try AccountRules.checkPassword("short") }
        #expect(throws: LatchkeyError.self) { try AccountRules.checkPassword(String(repeating: "é", count: 40)) }
    }
}
