import Foundation
import Mustache

/// A portal template as swift-mustache parsed it, read once at start into the steps this file renders.
///
/// Rendering was 44 % of the CPU of the *Sito e dispositivo* page, and 97 % of the sites page's handler at scale (perf,
/// issue 13): at every lookup swift-mustache splits the name on "." and asks each level of the context, then the
/// value found, for four or five protocols (dynamic casts through the conformance cache), and every section and
/// partial renders into a string of its own. Here a name is split once, at start; values are typed (`PortalValue`),
/// told apart by their case, with no cast at run time; and the whole page is written into one buffer.
///
/// A template is read once into a tree, then flattened (`Step`): partials and blocks written in where they are called,
/// its texts in one buffer, its names in a table. The tree's nodes were shared by every request on every thread, and
/// walking them retained and released each node, its texts and its names: with two cores taking requests, those
/// counts bounced between the cores, and the template's retains cost twice what they cost on one (perf, issue 13).
/// Walking the steps retains nothing: a step holds only numbers.
///
/// The parse stays swift-mustache's, so standalone lines, whitespace and partial indentation are exactly its own. Its
/// tokens are not public: they are read through reflection (`Mirror`), once; a token or a form this renderer does not
/// handle (a transform, an unescaped value, a dynamic partial, another content type) stops the service at start,
/// naming the template. Rendering follows swift-mustache's rules for the values the portal passes: text, flags,
/// numbers, lists and objects. Every value is escaped as `PortalHTML` escapes it (every portal template is made by
/// `PortalHTML.template`). `compiledTemplatesRenderAsSwiftMustacheDoes` checks that the two render the same values alike
/// (`PortalValue.mustache`), and debug builds render every page both ways.
struct PortalTemplate: Sendable {
    /// One step of a flattened template. A section's, or an indented part's, steps follow it up to `end`.
    enum Step: Sendable {
        case text(Range<Int>)
        case value(Int)
        case section(Int, end: Int)
        case invertedSection(Int, end: Int)
        /// A partial's or a block's steps, under an indentation (`indentations`), where swift-mustache indents each of
        /// their lines: only where an indentation is in force, so a template without one has no such step.
        case indented(Int, end: Int)
    }

    /// A `{{name}}`, split at start into `keys`: `.` is the current value (no keys); a leading `.` looks only at the
    /// current value.
    struct Name: Sendable {
        let keys: Range<Int>
        let currentOnly: Bool
    }

    let steps: [Step]
    /// Every text of the template, and every indentation, end to end: a step says which bytes are its own.
    let bytes: [UInt8]
    let names: [Name]
    /// The names' keys, end to end.
    let keys: [String]
    let indentations: [Range<Int>]

    /// Each template of a library, by the name pages and partials call it, with the partials it calls written in.
    static func library(_ templates: [String: MustacheTemplate]) throws -> [String: PortalTemplate] {
        let parsed = try Dictionary(uniqueKeysWithValues: templates.map { ($0.key, try Self.nodes(of: $0.value, in: $0.key)) })
        return try Dictionary(uniqueKeysWithValues: parsed.map { name, nodes in
            var flattening = Flattening(library: parsed, template: name)
            try flattening.add(nodes, indentation: nil, overrides: nil)
            return (name, PortalTemplate(steps: flattening.steps, bytes: flattening.bytes, names: flattening.names,
                                         keys: flattening.keys, indentations: flattening.indentations))
        })
    }

    /// Renders `template` of `library` with `root` at the bottom of the context; nil when there is no such template.
    static func render(_ root: PortalValue, template: String, library: [String: PortalTemplate]) -> [UInt8]? {
        guard let template = library[template] else { return nil }
        var writer = PortalTemplateWriter(template: template, root: root)
        writer.render(0..<template.steps.count, indentation: nil)
        return writer.output
    }

    /// A template as swift-mustache parsed it: what `Flattening` turns into steps.
    fileprivate indirect enum Node {
        case text([UInt8])
        case value(String)
        case section(String, [Node])
        case invertedSection(String, [Node])
        case partial(String, indentation: String?, overrides: [String: [Node]]?)
        case block(String, default: [Node], indentation: String?)
    }

    // MARK: - Reading swift-mustache's parse

    fileprivate static func nodes(of template: MustacheTemplate, in name: String) throws -> [Node] {
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
        func name() throws -> String {
            guard try field(1, as: [String].self).isEmpty else { throw unsupported("a transform") }
            return try field(0, as: String.self)
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

/// Flattens a parsed template into steps, as swift-mustache would render it: a partial's nodes in place of the partial,
/// with the blocks it holds overridden by the caller's (the outermost override wins), under the indentation the two
/// add up to.
private struct Flattening {
    let library: [String: [PortalTemplate.Node]]
    /// The template being flattened, which an error names.
    let template: String
    var steps: [PortalTemplate.Step] = []
    var bytes: [UInt8] = []
    var names: [PortalTemplate.Name] = []
    var keys: [String] = []
    var indentations: [Range<Int>] = []
    private var nameIndex: [String: Int] = [:]
    /// The partials being written in, outermost first: one that calls itself would never end.
    private var calling: [String] = []
    /// Whether the last step is text that the next text may join: not past a section's or part's end, nor where lines
    /// are indented, as each text is then a node of its own to indent.
    private var textContinues = false

    init(library: [String: [PortalTemplate.Node]], template: String) {
        self.library = library
        self.template = template
    }

    mutating func add(_ nodes: [PortalTemplate.Node], indentation: String?, overrides: [String: [PortalTemplate.Node]]?) throws {
        for node in nodes { try add(node, indentation: indentation, overrides: overrides) }
    }

    private mutating func add(_ node: PortalTemplate.Node, indentation: String?, overrides: [String: [PortalTemplate.Node]]?) throws {
        switch node {
        case .text(let text):
            if textContinues, case .text(let range) = steps.last, (indentation ?? "").isEmpty {
                steps[steps.count - 1] = .text(range.lowerBound..<range.upperBound + text.count)
            } else {
                steps.append(.text(bytes.count..<bytes.count + text.count))
            }
            bytes.append(contentsOf: text)
            textContinues = true
        case .value(let name):
            steps.append(.value(index(of: name)))
            textContinues = false
        case .section(let name, let nodes):
            let name = index(of: name)
            try enclose(nodes, indentation: indentation, overrides: overrides) { .section(name, end: $0) }
        case .invertedSection(let name, let nodes):
            let name = index(of: name)
            try enclose(nodes, indentation: indentation, overrides: overrides) { .invertedSection(name, end: $0) }
        case .partial(let name, let indented, let inheriting):
            guard let partial = library[name] else {
                throw TemplateTextError(template: template, problem: "the partial \(name) is no template of the portal's")
            }
            guard !calling.contains(name) else {
                throw TemplateTextError(template: template, problem: "the partial \(name) calls itself")
            }
            var inherited = overrides
            if let inheriting { inherited = overrides.map { $0.merging(inheriting) { outer, _ in outer } } ?? inheriting }
            calling.append(name)
            try part(partial, indented: indented, within: indentation, overrides: inherited)
            calling.removeLast()
        case .block(let name, let defaultNodes, let indented):
            try part(overrides?[name] ?? defaultNodes, indented: indented, within: indentation, overrides: overrides)
        }
    }

    /// A partial's or a block's nodes: written in as they are, or, under an indentation (its own added to the one in
    /// force, so never empty where one is), as a part whose lines the writer indents.
    private mutating func part(_ nodes: [PortalTemplate.Node], indented: String?, within outer: String?,
                               overrides: [String: [PortalTemplate.Node]]?) throws {
        let indentation = indented.map { (outer ?? "") + $0 } ?? outer
        guard let indentation, !indentation.isEmpty else {
            return try add(nodes, indentation: indentation, overrides: overrides)
        }
        let indentationIndex = indentations.count
        indentations.append(bytes.count..<bytes.count + indentation.utf8.count)
        bytes.append(contentsOf: indentation.utf8)
        try enclose(nodes, indentation: indentation, overrides: overrides) { .indented(indentationIndex, end: $0) }
    }

    private mutating func enclose(_ nodes: [PortalTemplate.Node], indentation: String?, overrides: [String: [PortalTemplate.Node]]?,
                                  step: (Int) -> PortalTemplate.Step) throws {
        let at = steps.count
        steps.append(.text(0..<0))
        textContinues = false
        try add(nodes, indentation: indentation, overrides: overrides)
        steps[at] = step(steps.count)
        textContinues = false
    }

    private mutating func index(of name: String) -> Int {
        if let index = nameIndex[name] { return index }
        let split = name == "." ? [] : name.split(separator: ".").map(String.init)
        names.append(PortalTemplate.Name(keys: keys.count..<keys.count + split.count, currentOnly: name != "." && name.first == "."))
        keys.append(contentsOf: split)
        nameIndex[name] = names.count - 1
        return names.count - 1
    }
}

/// One rendering: the output so far, and the context stack, pushed and popped as sections open and close.
private struct PortalTemplateWriter {
    let template: PortalTemplate
    var stack: [PortalValue]
    var output: [UInt8] = []

    init(template: PortalTemplate, root: PortalValue) {
        self.template = template
        stack = [root]
        stack.reserveCapacity(8)
        output.reserveCapacity(16_384)
    }

    /// The steps in `range`, as swift-mustache renders a template's nodes: under an indentation, a node's output that
    /// starts a new line of these nodes' own output is indented first.
    mutating func render(_ range: Range<Int>, indentation: Int?) {
        var index = range.lowerBound
        guard let indentation else {
            while index < range.upperBound { index = render(at: index, indentation: nil) }
            return
        }
        let start = output.count
        while index < range.upperBound {
            let before = output.count
            let onNewLine = before > start && output[before - 1] == UInt8(ascii: "\n")
            index = render(at: index, indentation: indentation)
            if onNewLine, output.count > before {
                let indent = template.indentations[indentation]
                template.bytes.withUnsafeBufferPointer { output.insert(contentsOf: $0[indent], at: before) }
            }
        }
    }

    /// Renders the step at `index` (with its section's or part's steps) and says where the next one is.
    private mutating func render(at index: Int, indentation: Int?) -> Int {
        switch template.steps[index] {
        case .text(let range):
            template.bytes.withUnsafeBufferPointer { output.append(contentsOf: UnsafeBufferPointer(rebasing: $0[range])) }
            return index + 1
        case .value(let name):
            if let value = lookUp(name) { write(value) }
            return index + 1
        case .section(let name, let end):
            let steps = index + 1..<end
            switch lookUp(name) {
            case nil:
                break
            case .list(let rows):
                for row in rows { render(steps, within: row, indentation: indentation) }
            case .flag(let flag):
                if flag { render(steps, indentation: indentation) }
            case let value?:
                render(steps, within: value, indentation: indentation)
            }
            return end
        case .invertedSection(let name, let end):
            let steps = index + 1..<end
            switch lookUp(name) {
            case nil:
                render(steps, indentation: indentation)
            case .list(let rows):
                // swift-mustache reads an empty list's inverted section with the list as the current value.
                if rows.isEmpty { render(steps, within: .list(rows), indentation: indentation) }
            case .flag(let flag):
                if !flag { render(steps, indentation: indentation) }
            case .some:
                break
            }
            return end
        case .indented(let indented, let end):
            render(index + 1..<end, indentation: indented)
            return end
        }
    }

    private mutating func render(_ steps: Range<Int>, within value: PortalValue, indentation: Int?) {
        stack.append(value)
        render(steps, indentation: indentation)
        stack.removeLast()
    }

    /// As swift-mustache looks a name up: its first key from the innermost level out (or the current value only),
    /// the rest of its keys on what that found.
    private func lookUp(_ index: Int) -> PortalValue? {
        let name = template.names[index]
        guard !name.keys.isEmpty else { return stack.last }
        let first = template.keys[name.keys.lowerBound]
        var found: PortalValue?
        if name.currentOnly {
            found = stack.last?.value(named: first)
        } else {
            var level = stack.count - 1
            while level >= 0, found == nil {
                found = stack[level].value(named: first)
                level -= 1
            }
        }
        for key in name.keys.dropFirst() {
            found = found?.value(named: template.keys[key])
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
