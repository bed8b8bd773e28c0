import Foundation
import XCTest
@testable import PostclassMetrics

final class DaemonMetricsTests: XCTestCase {
    private func samples(_ metrics: DaemonMetrics) -> [String: Double] {
        parseSamples(String(decoding: metrics.exposition(), as: UTF8.self))
    }

    func testInstancesAreIsolated() {
        let first = DaemonMetrics()
        let second = DaemonMetrics()
        first.consumed(topic: "posts", count: 5)
        XCTAssertEqual(samples(first)[#"postclassd_messages_consumed_total{topic="posts"}"#], 5)
        XCTAssertNil(samples(second)[#"postclassd_messages_consumed_total{topic="posts"}"#])
    }

    func testRetainConsumerLagDropsUnassignedPartitions() {
        let metrics = DaemonMetrics()
        for partition in Int32(0)..<3 { metrics.setConsumerLag(topic: "posts", partition: partition, lag: 10) }
        metrics.retainConsumerLag(assigned: [TopicPartition(topic: "posts", partition: 2)])
        var lag = samples(metrics).filter { $0.key.hasPrefix("postclassd_consumer_lag_messages") }
        XCTAssertEqual(lag, [#"postclassd_consumer_lag_messages{partition="2",topic="posts"}"#: 10])

        metrics.setConsumerLag(topic: "posts", partition: 2, lag: -1)  // librdkafka: unknown
        lag = samples(metrics).filter { $0.key.hasPrefix("postclassd_consumer_lag_messages") }
        XCTAssertEqual(lag, [:])

        metrics.setConsumerLag(topic: "posts", partition: 4, lag: 3)
        metrics.removeConsumerLag([TopicPartition(topic: "posts", partition: 4)])
        XCTAssertNil(samples(metrics)[#"postclassd_consumer_lag_messages{partition="4",topic="posts"}"#])
    }

    func testBuildInfoKeepsOneSeries() {
        let metrics = DaemonMetrics()
        metrics.buildInfo(version: "0.1.0", modelBundle: "passthrough")
        metrics.buildInfo(version: "0.1.0", modelBundle: "clip-small-v2")
        let info = samples(metrics).filter { $0.key.hasPrefix("postclassd_build_info") }
        XCTAssertEqual(info, [#"postclassd_build_info{model_bundle="clip-small-v2",version="0.1.0"}"#: 1])
    }

    func testHistogramBucketsAndClamping() {
        let metrics = DaemonMetrics()
        metrics.observeEndToEnd(seconds: -0.5)  // producer clock ahead of ours
        metrics.observeBatch(size: 256, waitSeconds: 0.001)
        metrics.setWorkerBusyRatio(1.7)
        let values = samples(metrics)
        XCTAssertEqual(values["postclassd_end_to_end_latency_seconds_sum"], 0)
        XCTAssertEqual(values[#"postclassd_end_to_end_latency_seconds_bucket{le="0.001"}"#], 1)
        XCTAssertEqual(values[#"postclassd_end_to_end_latency_seconds_bucket{le="30.0"}"#], 1)
        XCTAssertEqual(values[#"postclassd_batch_size_bucket{le="128.0"}"#], 0)
        XCTAssertEqual(values[#"postclassd_batch_size_bucket{le="256.0"}"#], 1)
        XCTAssertEqual(values["postclassd_worker_busy_ratio"], 1)
    }

    func testConveniencesForStageTimingAndKafkaTimestamps() throws {
        let metrics = DaemonMetrics()
        let result = metrics.timeStage("tokenize") { () -> Int in
            Thread.sleep(forTimeInterval: 0.02)
            return 7
        }
        XCTAssertEqual(result, 7)
        let delivered = Date(timeIntervalSince1970: 1_763_900_000)
        metrics.observeEndToEnd(kafkaTimestampMilliseconds: 1_763_899_998_750, deliveredAt: delivered)

        let values = samples(metrics)
        XCTAssertEqual(values[#"postclassd_stage_duration_seconds_count{stage="tokenize"}"#], 1)
        let tokenize = try XCTUnwrap(values[#"postclassd_stage_duration_seconds_sum{stage="tokenize"}"#])
        XCTAssertTrue((0.02..<1).contains(tokenize), "\(tokenize)")
        XCTAssertEqual(try XCTUnwrap(values["postclassd_end_to_end_latency_seconds_sum"]), 1.25, accuracy: 1e-6)
    }

    /// Each stage records into its own series (a table of histograms made at start), and
    /// every stage's series is in the scrape from the start.
    func testEveryStageHasItsOwnSeriesFromTheStart() {
        let named = ["decode", "tokenize", "text_encoder", "image_encoder", "heads"]
        let stages = named + [DaemonMetrics.wholeClassifierStage]
        let metrics = DaemonMetrics(stages: named)
        for stage in stages {
            XCTAssertEqual(samples(metrics)["postclassd_stage_duration_seconds_count{stage=\"\(stage)\"}"], 0, "\(stage)")
        }
        for (times, stage) in stages.enumerated() {
            for _ in 0...times { metrics.observeStage(stage, seconds: 0.5) }
        }
        let values = samples(metrics)
        for (times, stage) in stages.enumerated() {
            XCTAssertEqual(values["postclassd_stage_duration_seconds_count{stage=\"\(stage)\"}"], Double(times + 1), "\(stage)")
        }
    }

    func testLabelValuesAreEscaped() {
        let metrics = DaemonMetrics()
        metrics.deadLettered(reason: #"odd"reason\"#)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(text.contains(#"reason="odd\"reason\\""#), text)
    }

    func testConcurrentRecordingCountsEverything() async {
        let metrics = DaemonMetrics()
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for _ in 0..<1000 {
                        metrics.consumed(topic: "posts")
                        metrics.labelEmitted(task: "t", label: "l\(worker % 2)")
                    }
                }
            }
        }
        let values = samples(metrics)
        XCTAssertEqual(values[#"postclassd_messages_consumed_total{topic="posts"}"#], 8000)
        XCTAssertEqual(values[#"postclassd_labels_emitted_total{label="l0",task="t"}"#], 4000)
    }
}
