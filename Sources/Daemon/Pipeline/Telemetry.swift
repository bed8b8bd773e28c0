import Foundation
import Kafka
import Logging
import Model
import PostclassMetrics
import Synchronization

/// The daemon's outward signals in one place: Prometheus metrics, health and readiness, and
/// systemd notifications. The pipeline reports facts; this type turns them into signals.
final class Telemetry: Sendable {
    let metrics: DaemonMetrics
    let health: HealthState
    private let notifier: SystemdNotifier
    private let watchdog: Watchdog
    private let logger: Logger
    private let readySent = Atomic<Bool>(false)
    private let lastError = Mutex<String?>(nil)

    init(metrics: DaemonMetrics, health: HealthState, notifier: SystemdNotifier, logger: Logger) {
        self.metrics = metrics
        self.health = health
        self.notifier = notifier
        self.watchdog = Watchdog(notifier: notifier)
        self.logger = logger
        health.set(.groupJoined, ready: false, reason: "consumer has not joined its group yet")
        health.set(.producerConnected, ready: false, reason: "producer has not reached a broker yet")
    }

    /// Called on every poll-loop iteration: the loop's own liveness drives `/healthz` and the
    /// systemd watchdog, so a stalled loop stops both.
    func loopAlive() {
        health.heartbeat()
        watchdog.loopAlive()
        if health.isReady && !readySent.exchange(true, ordering: .relaxed) {
            notify { try notifier.ready(status: "consuming") }
            logger.info("ready")
        }
    }

    func modelLoading(expected: Duration) {
        let micros = UInt64(max(0, expected / .microseconds(1)))
        notify { try notifier.extendTimeout(microseconds: micros) }
    }

    func modelLoaded(_ identity: ModelIdentity) {
        health.set(.modelLoaded, ready: true)
        metrics.buildInfo(version: PostclassdVersion.current, modelBundle: "\(identity.name)@\(identity.version)")
    }

    func stopping() {
        notify { try notifier.stopping(status: "draining") }
    }

    func consumerStatistics(_ stats: ConsumerStatistics, assigned: Set<Kafka.TopicPartition>) {
        for lag in stats.fetchingPartitions {
            if let value = lag.lag ?? lag.storedLag {
                metrics.setConsumerLag(topic: lag.topicPartition.topic, partition: lag.topicPartition.partition, lag: value)
            }
        }
        metrics.retainConsumerLag(assigned: Set(assigned.map { PostclassMetrics.TopicPartition(topic: $0.topic, partition: $0.partition) }))
        if stats.brokersKnown > 0 {
            let joined = stats.hasJoinedGroup && stats.brokersUp > 0
            health.set(.groupJoined, ready: joined, reason: joined ? "" :
                stats.brokersUp == 0 ? "consumer cannot reach any broker" : "consumer group state is \(stats.groupState ?? "unknown")/\(stats.groupJoinState ?? "unknown")")
        }
    }

    func revoked(_ partitions: [Kafka.TopicPartition], lost: Bool) {
        metrics.rebalance(kind: lost ? .lost : .revoked)
        metrics.removeConsumerLag(partitions.map { PostclassMetrics.TopicPartition(topic: $0.topic, partition: $0.partition) })
    }

    func producerStatistics(_ stats: ConsumerStatistics) {
        guard stats.brokersKnown > 0 else { return }
        health.set(.producerConnected, ready: stats.brokersUp > 0, reason: stats.brokersUp > 0 ? "" : "producer cannot reach any broker")
    }

    /// The last error the Kafka clients reported, for a stall's reason.
    var lastKafkaError: String? { lastError.withLock { $0 } }

    func kafkaError(_ error: KafkaError) {
        metrics.kafkaError(kind: error.kind.rawValue)
        lastError.withLock { $0 = "\(error)" }
        if error.codeName == "_ALL_BROKERS_DOWN" {
            health.set(.groupJoined, ready: false, reason: "all brokers are down")
            health.set(.producerConnected, ready: false, reason: "all brokers are down")
        }
    }

    private func notify(_ send: () throws -> Void) {
        do { try send() } catch {
            logger.warning("systemd notification failed", metadata: ["error": "\(error)"])
        }
    }
}

enum PostclassdVersion {
    static let current = "0.1.0"
}
