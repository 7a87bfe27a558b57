/// Text from others (names, models, firmware a device reports) made safe to print on a terminal: control characters
/// — the escape that starts a terminal command, a carriage return that overwrites a line — are dropped, so what a
/// stranger typed cannot repaint or forge the CLI's output. Line breaks and tabs the CLI itself lays out stay.
public enum TerminalText {
    public static func printable(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars where scalar == "\n" || scalar == "\t" || !scalar.rewritesDisplay {
            scalars.append(scalar)
        }
        return String(scalars)
    }
}

extension Unicode.Scalar {
    /// A control character, or a bidirectional override or isolate (which reorders what follows it): what can rewrite
    /// how the text around it is shown, on a terminal, a page or an e-mail header.
    public var rewritesDisplay: Bool {
        properties.generalCategory == .control || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
    }
}
