import Foundation
import Mustache

/// A portal template as swift-mustache parsed it, read once at start into a tree this file renders.
///
/// Rendering was 44 % of the CPU of the *Sito e dispositivo* page, and 97 % of the sites page's handler at scale (perf,
/// issue 13): at every lookup swift-mustache splits the name on "." and asks each level of the context, then the
/// value found, for four or five protocols (dynamic casts through the conformance cache), and every section and
/// partial renders into a string of its own. Here a name is split once, at start; values are typed (`PortalValue`),
/// told apart by their case, with no cast at run time; and the whole page is written into one buffer.
///
/// The parse stays swift-mustache's, so standalone lines, whitespace and partial indentation are exactly its own. Its
/// tokens are not public: they are read through reflection (`Mirror`), once; a token or a form this renderer does not
/// handle (a transform, an unescaped value, a dynamic partial, another content type) stops the service at start,
/// naming the template. Rendering follows swift-mustache's rules for the values the portal passes: text, flags,
/// numbers, lists and objects. Every value is escaped as `PortalHTML` escapes it (every portal template is made by
/// `PortalHTML.template`). `compiledTemplatesRenderAsSwiftMustacheDoes` checks that the two render the same values alike
/// (`PortalValue.mustache`), and debug builds render every page both ways.
struct PortalTemplate: Sendable {
    indirect enum Node: Sendable {
        case text([UInt8])
        case value(Name)
        case section(Name, [Node])
        case invertedSection(Name, [Node])
        case partial(String, indentation: String?, overrides: [String: [Node]]?)
        case block(String, default: [Node], indentation: String?)
    }

    /// A `{{name}}` split at start: `.` is the current value (no keys); a leading `.` looks only at the current value.
    struct Name: Sendable {
        let keys: [String]
        let currentOnly: Bool

        init(_ name: String) {
            keys = name == "." ? [] : name.split(separator: ".").map(String.init)
            currentOnly = name != "." && name.first == "."
        }
    }

    let nodes: [Node]

    init(_ template: MustacheTemplate, named name: String) throws {
        nodes = try Self.nodes(of: template, in: name)
    }

    /// Each template of a library, by the name pages and partials call it.
    static func library(_ templates: [String: MustacheTemplate]) throws -> [String: PortalTemplate] {
        try Dictionary(uniqueKeysWithValues: templates.map { ($0.key, try PortalTemplate($0.value, named: $0.key)) })
    }

    /// Renders `template` of `library` with `root` at the bottom of the context; nil when there is no such template.
    static func render(_ root: PortalValue, template: String, library: [String: PortalTemplate]) -> [UInt8]? {
        guard let nodes = library[template]?.nodes else { return nil }
        var writer = PortalTemplateWriter(library: library, root: root)
        writer.render(nodes, indentation: nil, overrides: nil)
        return writer.output
    }

    // MARK: - Reading swift-mustache's parse

    private static func nodes(of template: MustacheTemplate, in name: String) throws -> [Node] {
        guard let tokens = Mirror(reflecting: template).descendant("tokens") as? [Any] else {
            throw TemplateTextError(template: name, problem: "swift-mustache's parse could not be read (its tokens moved)")
        }
        return try tokens.compactMap { try node($0, in: name) }
    }

    /// One of swift-mustache's tokens (`MustacheTemplate.Token`): its case's name, and its payload's fields in order.
    private static func node(_ token: Any, in template: String) throws -> Node? {
        guard let token = Mirror(reflecting: token).children.first, let kind = token.label else {
            throw TemplateTextError(template: template, problem: "a token of swift-mustache's parse could not be read")
        }
        let fields = Mirror(reflecting: token.value).children.map(\.value)
        func unsupported(_ what: String) -> TemplateTextError {
            TemplateTextError(template: template, problem: "\(what) is not rendered by the portal's templates")
        }
        func field<T>(_ index: Int, as _: T.Type) throws -> T {
            guard index < fields.count, let value = fields[index] as? T else {
                throw TemplateTextError(template: template, problem: "the \(kind) token of swift-mustache's parse could not be read")
            }
            return value
        }
        func name() throws -> Name {
            guard try field(1, as: [String].self).isEmpty else { throw unsupported("a transform") }
            return Name(try field(0, as: String.self))
        }
        func children(_ index: Int) throws -> [Node] { try nodes(of: try field(index, as: MustacheTemplate.self), in: template) }
        switch kind {
        case "text":
            guard let text = token.value as? String else { throw unsupported("a text token that is not text") }
            return .text(Array(text.utf8))
        case "variable": return .value(try name())
        case "section": return .section(try name(), try children(2))
        case "invertedSection": return .invertedSection(try name(), try children(2))
        case "partial":
            let overrides = try field(2, as: [String: MustacheTemplate]?.self)
            return .partial(try field(0, as: String.self), indentation: try field(1, as: String?.self),
                            overrides: try overrides?.mapValues { try nodes(of: $0, in: template) })
        case "blockExpansion":
            return .block(try field(0, as: String.self), default: try children(1), indentation: try field(2, as: String?.self))
        case "contentType":
            guard token.value is PortalHTML else { throw unsupported("a content type other than PortalHTML") }
            return nil
        default:
            throw unsupported("\(kind)")
        }
    }
}

/// One rendering: the output so far, and the context stack, pushed and popped as sections open and close.
private struct PortalTemplateWriter {
    let library: [String: PortalTemplate]
    var stack: [PortalValue]
    var output: [UInt8] = []

    init(library: [String: PortalTemplate], root: PortalValue) {
        self.library = library
        stack = [root]
        stack.reserveCapacity(8)
        output.reserveCapacity(16_384)
    }

    /// As swift-mustache renders a template: under an indentation, a node's output that starts a new line of this
    /// template's own output is indented first.
    mutating func render(_ nodes: [PortalTemplate.Node], indentation: String?, overrides: [String: [PortalTemplate.Node]]?) {
        guard let indentation, !indentation.isEmpty else {
            for node in nodes { render(node, indentation: indentation, overrides: overrides) }
            return
        }
        let start = output.count
        for node in nodes {
            let before = output.count
            let onNewLine = before > start && output[before - 1] == UInt8(ascii: "\n")
            render(node, indentation: indentation, overrides: overrides)
            if onNewLine, output.count > before { output.insert(contentsOf: indentation.utf8, at: before) }
        }
    }

    private mutating func render(_ node: PortalTemplate.Node, indentation: String?, overrides: [String: [PortalTemplate.Node]]?) {
        switch node {
        case .text(let bytes):
            output.append(contentsOf: bytes)
        case .value(let name):
            guard let value = lookUp(name) else { return }
            write(value)
        case .section(let name, let nodes):
            switch lookUp(name) {
            case nil:
                return
            case .list(let rows):
                for row in rows { render(nodes, within: row, indentation: indentation, overrides: overrides) }
            case .flag(let flag):
                if flag { render(nodes, indentation: indentation, overrides: overrides) }
            case let value?:
                render(nodes, within: value, indentation: indentation, overrides: overrides)
            }
        case .invertedSection(let name, let nodes):
            switch lookUp(name) {
            case nil:
                render(nodes, indentation: indentation, overrides: overrides)
            case .list(let rows):
                // swift-mustache reads an empty list's inverted section with the list as the current value.
                if rows.isEmpty { render(nodes, within: .list(rows), indentation: indentation, overrides: overrides) }
            case .flag(let flag):
                if !flag { render(nodes, indentation: indentation, overrides: overrides) }
            case .some:
                return
            }
        case .partial(let name, let indented, let inheriting):
            guard let partial = library[name] else { return }
            var inherited = overrides
            // The outermost override of a block wins, as in swift-mustache.
            if let inheriting { inherited = overrides.map { $0.merging(inheriting) { outer, _ in outer } } ?? inheriting }
            render(partial.nodes, indentation: indented.map { (indentation ?? "") + $0 } ?? indentation, overrides: inherited)
        case .block(let name, let defaultNodes, let indented):
            render(overrides?[name] ?? defaultNodes, indentation: indented.map { (indentation ?? "") + $0 } ?? indentation,
                   overrides: overrides)
        }
    }

    private mutating func render(_ nodes: [PortalTemplate.Node], within value: PortalValue, indentation: String?,
                                 overrides: [String: [PortalTemplate.Node]]?) {
        stack.append(value)
        render(nodes, indentation: indentation, overrides: overrides)
        stack.removeLast()
    }

    /// As swift-mustache looks a name up: its first key from the innermost level out (or the current value only),
    /// the rest of its keys on what that found.
    private func lookUp(_ name: PortalTemplate.Name) -> PortalValue? {
        guard let first = name.keys.first else { return stack.last }
        var found: PortalValue?
        if name.currentOnly {
            found = stack.last?.value(named: first)
        } else {
            for level in stack.reversed() {
                if let child = level.value(named: first) { found = child; break }
            }
        }
        for key in name.keys.dropFirst() {
            found = found?.value(named: key)
        }
        return found
    }

    /// A value as swift-mustache writes it (text as it is, anything else as `String(describing:)`), escaped.
    private mutating func write(_ value: PortalValue) {
        switch value {
        case .text(let text): text.appendHTMLEscaped(to: &output)
        case .flag(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): output.append(contentsOf: String(number).utf8)
        case .list, .object: String(describing: value.mustache).appendHTMLEscaped(to: &output)
        }
    }
}
