import Foundation
import XCTest
@testable import PostclassMetrics

/// Checks `tools/grafana/postclassd-dashboard.json` against what DaemonMetrics really exports.
final class GrafanaDashboardTests: XCTestCase {
    private func loadDashboard() throws -> [String: Any] {
        let url = repositoryRoot.appendingPathComponent("tools/grafana/postclassd-dashboard.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        return try XCTUnwrap(object as? [String: Any], "dashboard is not a JSON object")
    }

    /// Every PromQL expression in the dashboard, from panels and nested rows.
    private func expressions(in value: Any) -> [String] {
        switch value {
        case let dictionary as [String: Any]:
            let own = (dictionary["expr"] as? String).map { [$0] } ?? []
            return own + dictionary.filter { $0.key != "expr" }.values.flatMap(expressions(in:))
        case let array as [Any]:
            return array.flatMap(expressions(in:))
        default:
            return []
        }
    }

    /// The metric family names of a DaemonMetrics that recorded one of everything.
    private func exportedFamilies() -> Set<String> {
        let metrics = DaemonMetrics()
        metrics.consumed(topic: "t"); metrics.produced(topic: "t"); metrics.deadLettered(reason: "r")
        metrics.labelEmitted(task: "t", label: "l"); metrics.dropped(task: "t", label: "l")
        metrics.routed(task: "t", label: "l", topic: "t"); metrics.rebalance(kind: .lost)
        metrics.kafkaError(kind: "k"); metrics.offsetReset(topic: "t")
        metrics.deliveryRetried(topic: "t", kind: "transient"); metrics.offsetGaps(1)
        metrics.observeStage("heads", seconds: 0.1)
        metrics.setConsumerLag(topic: "t", partition: 0, lag: 1)
        metrics.buildInfo(version: "v", modelBundle: "m")
        metrics.setInputStalled(false)
        metrics.transactionAborted(reason: "error")
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        return Set(text.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ")
            return parts.count == 4 && parts[1] == "TYPE" ? String(parts[2]) : nil
        })
    }

    func testDashboardShapeAndDatasourceVariable() throws {
        let dashboard = try loadDashboard()
        XCTAssertEqual(dashboard["schemaVersion"] as? Int, 39)
        let variables = try XCTUnwrap((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]])
        XCTAssertTrue(variables.contains { $0["type"] as? String == "datasource" && $0["query"] as? String == "prometheus" })
        let titles = try XCTUnwrap(dashboard["panels"] as? [[String: Any]]).compactMap { $0["title"] as? String }
        for wanted in ["Throughput", "End-to-end latency", "Stage latency", "Consumer lag per partition",
                       "Dead-letter rate", "Label mix", "In-flight messages", "Batch size", "Worker busy ratio",
                       "Build info"] {
            XCTAssertTrue(titles.contains { $0.hasPrefix(wanted) }, "no panel titled \(wanted)…: \(titles)")
        }
    }

    func testEveryQueriedMetricIsExported() throws {
        let exported = exportedFamilies()
        let pattern = try NSRegularExpression(pattern: "postclassd_[a-z_]+")
        var queried: Set<String> = []
        for expr in expressions(in: try loadDashboard()) {
            for match in pattern.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
                guard let range = Range(match.range, in: expr) else { continue }
                var name = String(expr[range])
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !exported.contains(name) {
                    name = String(name.dropLast(suffix.count))
                }
                queried.insert(name)
            }
        }
        XCTAssertFalse(queried.isEmpty)
        XCTAssertEqual(queried.subtracting(exported), [], "dashboard queries metrics DaemonMetrics does not export")
        XCTAssertEqual(exported.subtracting(queried), [], "exported metrics missing from the dashboard")
    }

    /// Grafana variables substituted, each expression must parse as PromQL (via a rules file).
    func testEveryQueryParses() throws {
        guard let promtool = findTool("promtool") else {
            return XCTFail("promtool not found: apt-get install prometheus")
        }
        var rules = "groups:\n  - name: dashboard\n    rules:\n"
        for (index, expr) in expressions(in: try loadDashboard()).enumerated() {
            let concrete = expr.replacingOccurrences(of: "$__rate_interval", with: "5m")
                .replacingOccurrences(of: "$job", with: ".*")
                .replacingOccurrences(of: "$instance", with: ".*")
                .replacingOccurrences(of: "$task", with: "nsfw")
            rules += "      - record: dashboard:expr\(index)\n        expr: |\n          \(concrete)\n"
        }
        let file = try temporaryDirectory(self).appendingPathComponent("dashboard-rules.yml")
        try rules.write(to: file, atomically: true, encoding: .utf8)
        let result = try runProgram(promtool, ["check", "rules", file.path])
        XCTAssertEqual(result.status, 0, "promtool check rules:\n\(result.output)\n\(rules)")
    }
}
