import Foundation
import LatchkeyProtocol
import Mustache

/// A value a portal template reads, told apart by its case: the renderer (`PortalTemplate`) asks nothing of it at run
/// time. Values passed as `Any` were told apart by dynamic casts (`as [Any]`, `as String`, `as? any MustacheParent`) at
/// every lookup and section, with an existential copied at each step: with the retains and releases around them, about
/// two thirds of rendering the *Sito e dispositivo* page (perf, issue 13).
enum PortalValue: Sendable {
    case text(String)
    case flag(Bool)
    case number(Int)
    case list([PortalValue])
    /// Behind one reference: a value is copied at every lookup and every section, and copying an existential in place
    /// went through its type's value witnesses (perf, the site page's lookups: 8.4 → 5.0 µs).
    indirect case object(any PortalObject)

    /// A value as swift-mustache reads it (text, flags and numbers as they are, objects through `MustacheObject`): debug
    /// builds and the tests render the same values with swift-mustache, and refuse a difference.
    var mustache: Any {
        switch self {
        case .text(let text): text
        case .flag(let flag): flag
        case .number(let number): number
        case .list(let values): values.map(\.mustache)
        case .object(let object): MustacheObject(object: object)
        }
    }

    /// Any value as the portal's templates read it: text, flags and numbers as they are, an object as it answers, a
    /// struct by its fields (reflected once, here), a collection element by element. An optional reads as its value,
    /// and one that holds nothing as no value, so that `{{#x}}` hides its section, as swift-mustache reads a nil property.
    init?(reflecting value: Any) {
        switch value {
        case let text as String: self = .text(text)
        case let flag as Bool: self = .flag(flag)
        case let number as Int: self = .number(number)
        case let object as any PortalObject: self = .object(object)
        case let table as [String: Any]: self = .object(table.compactMapValues(PortalValue.init(reflecting:)))
        default:
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .optional:
                guard let wrapped = mirror.children.first?.value, let value = PortalValue(reflecting: wrapped) else { return nil }
                self = value
            case .struct:
                var fields: [String: PortalValue] = [:]
                for child in mirror.children {
                    if let label = child.label, let field = PortalValue(reflecting: child.value) { fields[label] = field }
                }
                self = .object(fields)
            case .collection:
                self = .list(mirror.children.compactMap { PortalValue(reflecting: $0.value) })
            default:
                self = .text(String(describing: value))
            }
        }
    }

    /// What a value's name reads: an object's answer; nothing else has names.
    func value(named name: String) -> PortalValue? {
        guard case .object(let object) = self else { return nil }
        return object.value(named: name)
    }
}

/// A value whose names a template looks up: a page, a row, who is signed in. The pages and rows that a page repeats
/// answer by a `switch` over their own fields; `rowsAnswerEveryFieldTheyHave` checks that every field is answered.
protocol PortalObject: Sendable {
    func value(named name: String) -> PortalValue?
}

/// A table of values, as a page reflected once (`PortalValue(reflecting:)`) reads.
extension Dictionary: PortalObject where Key == String, Value == PortalValue {
    func value(named name: String) -> PortalValue? { self[name] }
}

/// An object as swift-mustache looks its names up.
struct MustacheObject: MustacheParent {
    let object: any PortalObject
    func child(named name: String) -> Any? { object.value(named: name)?.mustache }
}

extension Optional where Wrapped == String {
    /// Text, or no value at all: `{{#x}}` hides its section.
    var portalValue: PortalValue? { map(PortalValue.text) }
}

extension Array where Element: PortalObject {
    var portalValue: PortalValue { .list(map(PortalValue.object)) }
}

/// Who is signed in, as the layout shows them.
struct PortalUser: PortalObject {
    let name: String
    let role: AccountRole

    func value(named name: String) -> PortalValue? {
        switch name {
        case "name": .text(self.name)
        case "is_owner": .flag(role == .owner)
        case "is_installer": .flag(role == .installer)
        default: nil
        }
    }
}

/// What every template may also read beside its page: the language, the CSRF token, who is signed in (the catalogue's
/// texts are written into the templates: `TranslatedTemplates`). A name is looked up here, then in the page.
struct PortalPageContext: PortalObject {
    let language: Language
    let csrf: String
    let user: PortalUser?
    /// The page that answers its names itself, or its fields reflected once.
    let page: PortalValue

    init(language: Language, csrf: String, user: PortalUser?, page: any PortalPage) {
        self.language = language
        self.csrf = csrf
        self.user = user
        self.page = PortalValue(reflecting: page) ?? .object([String: PortalValue]())
    }

    func value(named name: String) -> PortalValue? {
        switch name {
        case "lang": .text(language.rawValue)
        case "other_lang": .text(language.other.rawValue)
        case "csrf": .text(csrf)
        case "user": user.map(PortalValue.object) ?? page.value(named: name)
        default: page.value(named: name)
        }
    }
}
