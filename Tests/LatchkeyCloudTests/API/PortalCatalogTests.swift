@testable import LatchkeyCloud
import LatchkeyProtocol
import Testing

struct PortalCatalogTests {
    /// A text's placeholders are written in once, in one pass: a value that holds braces (a serial, an address, a
    /// refusal's code) is shown as it is, never read for placeholders itself, whatever order the parameters come in.
    @Test func placeholdersAreWrittenInOnceAndValuesStayAsTheyAre() {
        let catalog = PortalCatalog(strings: [
            .en: ["asks": "{owner} asks for {serial}: {unknown}, {unclosed {owner}", "plain": "No placeholders {here}"],
            .it: ["asks": "{serial} per {owner}"],
        ])
        for _ in 0..<20 {
            #expect(catalog.text("asks", .en, ["owner": "{serial}", "serial": "NVR-{owner}"])
                == "{serial} asks for NVR-{owner}: {unknown}, {unclosed {serial}")
        }
        #expect(catalog.text("asks", .it, ["owner": "Giulia", "serial": "NVR-1"]) == "NVR-1 per Giulia")
        #expect(catalog.text("plain", .it) == "No placeholders {here}", "a key missing in Italian reads in English")
        #expect(catalog.text("plain", .en, ["here": "è qui"]) == "No placeholders è qui")
        #expect(catalog.text("missing_key", .en, ["x": "y"]) == "missing_key")
    }
}
