import Foundation
import HTTPTypes
import Hummingbird

extension PageRequest {
    /// The request's `?limit` and `?cursor`.
    init(_ request: Request) throws {
        try self.init(limit: request.uri.queryParameters.get("limit"), cursor: request.uri.queryParameters.get("cursor"))
    }

    /// A portal page: as many as the page shows, from the request's `?cursor`.
    init(_ request: Request, limit: Int) throws {
        self.init(limit: limit, after: try PageCursor.given(request.uri.queryParameters.get("cursor")))
    }
}

extension Request {
    /// This request's path and query with the cursor replaced: where the page after `cursor` is, filters kept.
    func page(after cursor: PageCursor) -> String {
        var query = URLComponents()
        query.queryItems = uri.queryParameters.filter { $0.key != "cursor" }.map { URLQueryItem(name: String($0.key), value: String($0.value)) }
            + [URLQueryItem(name: "cursor", value: cursor.text)]
        return uri.path + "?" + (query.percentEncodedQuery ?? "")
    }
}

/// A page as the API answers it: the items as a JSON array, as before lists had pages (callers that never page keep
/// working on the first 100), and the next page as a `Link: <…>; rel="next"` header (RFC 8288) with the request's own
/// filters, absent on the last page.
struct PagedResponse<Item: Encodable & Sendable>: ResponseGenerator {
    let page: Page<Item>

    init(_ page: Page<Item>) {
        self.page = page
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try context.responseEncoder.encode(page.items, from: request, context: context)
        if let next = page.next {
            response.headers[.link] = "<\(request.page(after: next))>; rel=\"next\""
        }
        return response
    }
}

extension HTTPField.Name {
    static let link = HTTPField.Name("Link")!
}
