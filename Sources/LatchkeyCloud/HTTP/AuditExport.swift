import Foundation
import Hummingbird
import LatchkeyProtocol

/// A history as its owner downloads it: JSON (the API's shape) or CSV that a spreadsheet opens (`?format=csv`).
enum AuditExport {
    enum Format: String {
        case json, csv
    }

    static func format(of request: Request) throws -> Format {
        guard let text = request.uri.queryParameters.get("format") else { return .json }
        guard let format = Format(rawValue: text) else { throw LatchkeyError.invalidRequest("format must be json or csv.") }
        return format
    }

    static func wire(_ lines: [AuditLine]) -> [API.AuditEntry] {
        lines.map { line in
            let entry = line.entry
            return API.AuditEntry(sequence: entry.sequence ?? 0, at: entry.at, actorId: entry.actorId, actorName: line.actorName,
                                  siteId: entry.siteId, deviceSerial: entry.deviceSerial, requestId: entry.requestId,
                                  action: entry.action.rawValue, outcome: entry.outcome, detail: entry.detail)
        }
    }

    /// A device's history as an answer: the downloaded file is named after the device.
    static func response(_ lines: [AuditLine], _ format: Format, device serial: String) throws -> Response {
        try response(lines, format, name: "latchkey-device-\(serial.filter { $0.isLetter || $0.isNumber || $0 == "-" })")
    }

    /// The answer in the asked format; `name` is the downloaded file's, without extension.
    static func response(_ lines: [AuditLine], _ format: Format, name: String) throws -> Response {
        var headers = HTTPFields()
        let body: Data
        switch format {
        case .json:
            headers[.contentType] = "application/json; charset=utf-8"
            body = try WireCoding.makeEncoder().encode(wire(lines))
        case .csv:
            headers[.contentType] = "text/csv; charset=utf-8"
            headers[.contentDisposition] = "attachment; filename=\"\(name).csv\""
            body = Data(AuditCSV.document(wire(lines)).utf8)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: body)))
    }
}
