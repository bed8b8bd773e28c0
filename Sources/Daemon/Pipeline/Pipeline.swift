import Foundation
import Kafka
import Logging
import Model
import Synchronization

/// Counts since start, for the periodic log line and the exit summary.
struct PipelineCounters: Sendable {
    var consumed = 0
    var labelled = 0
    var routed = 0
    var dropped = 0
    var deadLettered = 0
    var offsetResets = 0
    var rebalances = 0
}

/// The daemon's spine: one poll loop on the calling thread reads records, admits them within the
/// in-flight limits (pausing partitions when full, while polling on so the group keeps the
/// member), cuts micro-batches and hands them to the worker pool; workers classify and send;
/// delivery reports finish records and store offsets through the ledger.
///
/// This type holds what every thread shares (the stop request, the reason delivery failed, the
/// counters); the poll loop's own state lives in a ``PollLoop`` that ``run()`` owns, which the
/// compiler keeps on that thread.
final class Pipeline: Sendable {
    let settings: DaemonSettings
    let classifier: any Classifier
    let bootstrap: String
    let telemetry: Telemetry
    let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    /// Why delivery cannot go on (set from the delivery or retry threads), nil while it can.
    private let deliveryFailure = Mutex<String?>(nil)
    let counters = Mutex(PipelineCounters())

    init(settings: DaemonSettings, classifier: any Classifier, bootstrap: String, telemetry: Telemetry, logger: Logger) {
        self.settings = settings
        self.telemetry = telemetry
        self.classifier = classifier
        self.bootstrap = bootstrap
        self.logger = logger
    }

    /// Asks the loop to drain and stop; safe from any thread (a signal handler's queue).
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
    }

    var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    /// Why output can no longer be delivered, once ``fail(_:)`` has said so.
    var failure: String? { deliveryFailure.withLock { $0 } }

    /// Stops the daemon because output can no longer be delivered: the loop drains what it can
    /// and `run()` throws, so the process exits 2. Readiness fails at once. The first reason wins.
    func fail(_ reason: String) {
        let first = deliveryFailure.withLock { current in
            guard current == nil else { return false }
            current = reason
            return true
        }
        guard first else { return }
        logger.critical("stopping: \(reason)")
        telemetry.health.set(.producerConnected, ready: false, reason: reason)
        requestStop()
    }

    /// Runs until ``requestStop()``, then drains: in-flight batches finish (within the drain
    /// timeout), the producer is flushed, offsets are committed and the group is left.
    func run() throws(PipelineError) {
        let clients = try PipelineClients.make(settings: settings, bootstrap: bootstrap, telemetry: telemetry, logger: logger, handlers: .init(
            delivered: { [self] pending, report, transaction in
                telemetry.delivered(pending, report, transaction: transaction)
                counters.withLock { c in
                    switch pending.kind {
                    case .labelled: c.labelled += 1
                    case .routed: c.routed += 1
                    case .deadLetter: c.deadLettered += 1
                    }
                }
            },
            retried: { [telemetry] topic, error in telemetry.metrics.deliveryRetried(topic: topic, kind: error.kind.rawValue) },
            fatal: { [self] reason in fail(reason) }))
        do {
            try clients.consumer.subscribe(settings.inputTopics)
        } catch {
            clients.producer.close(timeout: .seconds(1))
            clients.consumer.close()
            throw .cannotSubscribe(topics: settings.inputTopics, error)
        }
        logger.info("consuming", metadata: ["topics": .string(settings.inputTopics.joined(separator: ",")),
                                           "group": .string(settings.groupID), "bootstrap": .string(bootstrap),
                                           "model": .string("\(classifier.identity.name) \(classifier.identity.version)")])
        let reset = (settings.kafkaProperties["auto.offset.reset"] ?? "earliest").lowercased()
        let stallWatch = StallWatch(timeout: settings.stallTimeout, startsAtEarliest: ["earliest", "smallest", "beginning"].contains(reset),
                                    consumer: clients.consumer, producer: clients.producer, moves: { [ledger = clients.ledger] in ledger.moves },
                                    telemetry: telemetry, logger: logger)
        stallWatch.start()
        var loop = PollLoop(pipeline: self, clients: clients)
        var error = loop.run()
        stallWatch.stop()
        if error == nil, let failure { error = .deliveryStopped(reason: failure) }
        loop.drain(deliveryFailed: error != nil)
        if let error { throw error }
    }

    /// The periodic and final log line.
    func logProgress(inFlight: Int, workerBusy: Double) {
        let c = counters.withLock { $0 }
        logger.info("progress", metadata: [
            "consumed": "\(c.consumed)", "labelled": "\(c.labelled)", "routed": "\(c.routed)", "dropped": "\(c.dropped)",
            "dead_lettered": "\(c.deadLettered)", "in_flight": "\(inFlight)", "offset_resets": "\(c.offsetResets)",
            "worker_busy": .string(String(format: "%.2f", workerBusy)),
        ])
    }
}
