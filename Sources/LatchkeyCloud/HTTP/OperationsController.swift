import Foundation
import Hummingbird
import Metrics
import Prometheus

/// `GET /healthz` and `GET /metrics` for whoever runs the service.
struct OperationsController {
    let store: any LatchkeyStore
    let registry: PrometheusCollectorRegistry
    let factory: any MetricsFactory

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("healthz") { _, _ in "ok\n" }
        router.get("metrics", use: metrics)
    }

    @Sendable func metrics(_ request: Request, context: AppRequestContext) async throws -> Response {
        // Counted from the database at scrape time, so every node reports the same truth.
        for (status, count) in try await store.read({ try await $0.resetRequests.countByStatus() }) {
            Gauge(label: "latchkey_password_reset_requests", dimensions: [("status", status.rawValue)], factory: factory)
                .record(count)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
