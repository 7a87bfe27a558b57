import FluentKit

/// Every migration, in the order it landed. Append only: a landed migration is never edited.
enum LatchkeyMigrations {
    static let all: [any Migration] = [
        CreateAccount(),
        CreateSessionToken(),
        CreateSite(),
        CreateSiteAuthorization(),
        CreateDevice(),
        CreatePasswordResetRequest(),
        CreateNotification(),
        CreateAuditEntry(),
        CreatePlatformKey(),
        // 002: devices for real
        AddDeviceIdentity(),
        CreateResetGrant(),
        // 003: anchored device identity
        DropPlatformKey(),
        AttestDevices(),
        CreateBindingGuard(),
        // 004: limits
        CreateRateCounter(),
        // 005: e-mail
        AddAccountLanguage(),
        CreateMailQueue(),
        // 006: presence by node
        AddNodePresence(),
        // 007: lookups at scale
        AddLookupIndexes(),
        // 008: lists a page at a time
        AddPageIndexes(),
        // 009: presence swept by node
        IndexDevicesByNode(),
    ]
}
