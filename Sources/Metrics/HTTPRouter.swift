import Prometheus

/// An HTTP response, independent of the transport, so routing is testable without sockets.
struct HTTPReply: Sendable {
    var status: Int
    var reason: String
    var contentType: String
    var body: [UInt8]
    var extraHeaders: [(String, String)] = []

    static func text(_ status: Int, _ reason: String, _ line: String,
                     headers: [(String, String)] = []) -> HTTPReply {
        HTTPReply(status: status, reason: reason, contentType: "text/plain; charset=utf-8",
                  body: Array((line + "\n").utf8), extraHeaders: headers)
    }
}

/// Maps a request's method and target to the reply for `/metrics`, `/healthz` and `/readyz`.
struct HTTPRouter: Sendable {
    /// The content type of the Prometheus text exposition format.
    static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    let registry: PrometheusCollectorRegistry
    let health: HealthState

    func reply(method: String, target: String) -> HTTPReply {
        // Probes and scrapers may add a query string (e.g. `?verbose`); it selects nothing here.
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            .first.map(String.init) ?? target
        let known = ["/metrics", "/healthz", "/readyz"]
        guard known.contains(path) else {
            return .text(404, "Not Found", "not found: \(path) (try /metrics, /healthz or /readyz)")
        }
        guard method == "GET" else {
            return .text(405, "Method Not Allowed", "method \(method) not allowed on \(path); use GET",
                         headers: [("Allow", "GET")])
        }
        switch path {
        case "/metrics":
            var body: [UInt8] = []
            registry.emit(into: &body)
            return HTTPReply(status: 200, reason: "OK", contentType: Self.prometheusContentType, body: body)
        case "/healthz":
            return probe(health.liveness)
        default:
            return probe(health.readiness)
        }
    }

    private func probe(_ result: ProbeResult) -> HTTPReply {
        result.passing
            ? .text(200, "OK", result.message)
            : .text(503, "Service Unavailable", result.message)
    }
}
