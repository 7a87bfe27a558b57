import Crypto
import Foundation
import Hummingbird
import Metrics
import Prometheus

/// `GET /healthz` for anyone and `GET /metrics` for whoever runs the service: with the operator's token
/// (`--metrics-token-file`), or without one from the operator's own machine only, never through the proxy.
struct OperationsController {
    let store: any LatchkeyStore
    let registry: PrometheusCollectorRegistry
    let factory: any MetricsFactory
    /// SHA-256 of the operator's metrics token, compared in constant time.
    let metricsTokenDigest: SHA256Digest?
    let deliveryLatency: DeliveryLatency
    let channels: DeviceChannelHub

    init(store: any LatchkeyStore, registry: PrometheusCollectorRegistry, factory: any MetricsFactory, metricsToken: String?,
         deliveryLatency: DeliveryLatency, channels: DeviceChannelHub) {
        self.store = store
        self.channels = channels
        self.deliveryLatency = deliveryLatency
        self.registry = registry
        self.factory = factory
        self.metricsTokenDigest = metricsToken.map { SHA256.hash(data: Data($0.utf8)) }
    }

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("healthz") { _, _ in "ok\n" }
        router.get("metrics", use: metrics)
    }

    private func isOperator(_ request: Request, _ context: AppRequestContext) -> Bool {
        guard let metricsTokenDigest else {
            return context.clientAddress.map(LatchkeyConfiguration.isLoopback) ?? false
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return false }
        let token = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        return SHA256.hash(data: Data(token.utf8)) == metricsTokenDigest
    }

    @Sendable func metrics(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard isOperator(request, context) else {
            throw LatchkeyError.unauthenticated(
                "Metrics are for the operator: send 'Authorization: Bearer <the token in --metrics-token-file>', or scrape from the server itself.")
        }
        // Counted from the database at scrape time, so every node reports the same truth.
        for (status, count) in try await store.read({ try await $0.resetRequests.countByStatus() }) {
            Gauge(label: "latchkey_password_reset_requests", dimensions: [("status", status.rawValue)], factory: factory)
                .record(count)
        }
        // This node's own: each node holds its own devices' channels.
        Gauge(label: "latchkey_device_channels", factory: factory).record(await channels.openChannels)
        let mails = try await store.read { try await $0.mailQueue.counts() }
        Gauge(label: "latchkey_mails_waiting", factory: factory).record(mails.waiting)
        Gauge(label: "latchkey_mails_failed", factory: factory).record(mails.failed)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        var text = ByteBuffer(bytes: registry.emitToBuffer())
        text.writeString(deliveryLatency.prometheusText)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: text))
    }
}
