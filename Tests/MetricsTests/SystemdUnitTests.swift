import Foundation
import XCTest

/// Checks `systemd/postclassd.service` with the real `systemd-analyze`.
final class SystemdUnitTests: XCTestCase {
    private var unitURL: URL { repositoryRoot.appendingPathComponent("systemd/postclassd.service") }

    private func systemdAnalyze() throws -> String {
        guard let tool = findTool("systemd-analyze") else {
            XCTFail("systemd-analyze not found: apt-get install systemd")
            throw XCTSkip("systemd-analyze missing")
        }
        return tool
    }

    /// A copy of the unit whose ExecStart points at an existing binary, since `verify` checks
    /// that the executable exists and the test must not install one in /usr/local/bin.
    private func verifiableCopy() throws -> URL {
        let text = try String(contentsOf: unitURL, encoding: .utf8)
        XCTAssertTrue(text.contains("ExecStart=/usr/local/bin/postclassd run"))
        let directory = try temporaryDirectory(self)
        let copy = directory.appendingPathComponent("postclassd.service")
        try text.replacingOccurrences(of: "ExecStart=/usr/local/bin/postclassd", with: "ExecStart=/bin/true")
            .write(to: copy, atomically: true, encoding: .utf8)
        return copy
    }

    func testVerifyAcceptsTheUnit() throws {
        let tool = try systemdAnalyze()
        let result = try runProgram(tool, ["verify", try verifiableCopy().path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "",
                       "systemd-analyze verify complained:\n\(result.output)")
    }

    func testOfflineSecurityExposureIsAtMostTwo() throws {
        let tool = try systemdAnalyze()
        let result = try runProgram(tool, ["security", "--offline=yes", unitURL.path])
        // "→ Overall exposure level for postclassd.service: 1.2 OK 🙂"
        guard let line = result.output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }),
              let afterColon = line.split(separator: ":").last,
              let score = afterColon.split(separator: " ").first.flatMap({ Double($0) })
        else {
            return XCTFail("no overall exposure line in:\n\(result.output)")
        }
        XCTAssertLessThanOrEqual(score, 2.0, result.output)
    }

    func testUnitHasTheRequiredSettings() throws {
        let text = try String(contentsOf: unitURL, encoding: .utf8)
        let lines = Set(text.split(separator: "\n").map { String($0) })
        for required in [
            "Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "TimeoutStopSec=60s",
            "Restart=on-failure", "EnvironmentFile=-/etc/postclassd/postclassd.env", "DynamicUser=yes",
            "LoadCredential=kafka-sasl-password:/etc/postclassd/credentials/kafka-sasl-password",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service",
            "CapabilityBoundingSet=", "MemoryDenyWriteExecute=yes",
        ] {
            XCTAssertTrue(lines.contains(required), "missing \(required)")
        }
    }

    func testEnvironmentExampleListsEverySetting() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("systemd/postclassd.env.example"),
                              encoding: .utf8)
        for name in ["BROKERS", "INPUT_TOPICS", "OUTPUT_TOPIC", "DLQ_TOPIC", "GROUP_ID", "BATCH_SIZE",
                     "BATCH_WAIT_MS", "WORKERS", "MAX_INFLIGHT_MESSAGES", "MAX_INFLIGHT_BYTES", "MODEL",
                     "DRAIN_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT", "METRICS_ADDRESS", "KAFKA",
                     "DELIVERY", "TRANSACTIONAL_ID", "TRANSACTION_INTERVAL"] {
            XCTAssertTrue(text.contains("#POSTCLASSD_\(name)="), "POSTCLASSD_\(name) not documented")
        }
    }
}
