import Foundation
import Kafka
import Logging
import Synchronization

/// Notices input that has stopped while records wait, which the poll loop's heartbeat cannot: a
/// loop that polls on while its consumer receives nothing (for example a fetch response larger
/// than `receive.message.max.bytes`, which librdkafka retries forever) is alive, not consuming.
///
/// Every few seconds the watch reads the ledger's move count (records taken in plus records
/// finished). Once that has stood still for the stall timeout, it asks the brokers how many
/// records wait in the assigned partitions (high watermark minus read position). If any do,
/// input is stalled: `/readyz` turns 503 with the reason, `postclassd_input_stalled` is 1 and an
/// error is logged, until records move again. A quiet topic is not a stall. The broker queries run
/// on the watch's own queue, never on the poll loop.
final class StallWatch: Sendable {
    private struct State {
        var lastMoves: UInt64 = 0
        var lastMoved = ContinuousClock.now
        /// When the brokers were last asked, so a quiet topic is asked once per timeout, not per tick.
        var lastAsked: ContinuousClock.Instant?
        var stalled = false
    }

    private let timeout: Duration
    private let interval: Duration
    private let startsAtEarliest: Bool
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let moves: @Sendable () -> UInt64
    private let telemetry: Telemetry
    private let logger: Logger
    private let queue = DispatchQueue(label: "postclassd.stall-watch")
    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)

    /// - Parameters:
    ///   - timeout: how long nothing may move while records wait.
    ///   - startsAtEarliest: whether a partition with no position and no committed offset is read
    ///     from its first record (`auto.offset.reset=earliest`); otherwise nothing waits in it.
    ///   - moves: the ledger's move count.
    init(timeout: Duration, startsAtEarliest: Bool, consumer: KafkaConsumer, producer: KafkaProducer, moves: @escaping @Sendable () -> UInt64,
         telemetry: Telemetry, logger: Logger) {
        self.timeout = timeout
        self.interval = max(.milliseconds(250), min(timeout / 4, .seconds(5)))
        self.startsAtEarliest = startsAtEarliest
        self.consumer = consumer
        self.producer = producer
        self.moves = moves
        self.telemetry = telemetry
        self.logger = logger
    }

    /// Starts watching.
    func start() {
        state.withLock { $0.lastMoved = .now }
        scheduleTick()
    }

    /// Stops watching and waits for a check in progress, so the clients can be closed after.
    func stop() {
        stopped.store(true, ordering: .releasing)
        queue.sync {}
    }

    private func scheduleTick() {
        let nanoseconds = interval / .nanoseconds(1)
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
            guard !stopped.load(ordering: .acquiring) else { return }
            check(now: .now)
            scheduleTick()
        }
    }

    private func check(now: ContinuousClock.Instant) {
        let moved = moves()
        let (stillFor, wasStalled, due) = state.withLock { s -> (Duration, Bool, Bool) in
            if moved != s.lastMoves {
                s.lastMoves = moved
                s.lastMoved = now
            }
            let stillFor = now - s.lastMoved
            let due = stillFor >= timeout && (s.lastAsked.map { now - $0 >= timeout } ?? true)
            if due { s.lastAsked = now }
            return (stillFor, s.stalled, due)
        }
        if stillFor < timeout {
            if wasStalled { setStalled(false, reason: "") }
            return
        }
        guard due else { return }
        let waiting: [(partition: TopicPartition, records: Int64)]
        do {
            waiting = try waitingRecords()
        } catch {
            // Brokers out of reach show in readiness already; ask again next time.
            logger.debug("stall check could not ask the brokers", metadata: ["error": "\(error)"])
            return
        }
        if waiting.isEmpty {
            if wasStalled { setStalled(false, reason: "") }
            return
        }
        let total = waiting.reduce(0) { $0 + $1.records }
        let listed = waiting.prefix(8).map { "\($0.partition) (\($0.records))" }.joined(separator: ", ")
        var reason = "input stalled: no record taken in or finished for \(Int(stillFor / .seconds(1)))s while \(total) records wait in \(listed)"
        if waiting.count > 8 { reason += " and \(waiting.count - 8) more partitions" }
        if let error = telemetry.lastKafkaError { reason += "; last Kafka error: \(error)" }
        setStalled(true, reason: reason)
    }

    private func setStalled(_ stalled: Bool, reason: String) {
        let changed = state.withLock { s in
            defer { s.stalled = stalled }
            return s.stalled != stalled
        }
        telemetry.health.set(.inputMoving, ready: !stalled, reason: reason)
        telemetry.metrics.setInputStalled(stalled)
        guard changed else { return }
        if stalled {
            logger.error("\(reason) (records will not be lost: they wait in Kafka; fix the cause and they are read)")
        } else {
            logger.notice("input moving again")
        }
    }

    /// The records waiting in each assigned partition that has any: high watermark minus where
    /// this member reads next (its position, else its group's committed offset, else where
    /// `auto.offset.reset` starts).
    private func waitingRecords() throws(KafkaError) -> [(partition: TopicPartition, records: Int64)] {
        let partitions = try consumer.assignment().sorted()
        guard !partitions.isEmpty else { return [] }
        let positions = try consumer.positions(partitions)
        let unknown = partitions.filter { positions[$0].flatMap { $0 } == nil }
        let committed = unknown.isEmpty ? [:] : try committedOffsets(unknown)
        var waiting: [(partition: TopicPartition, records: Int64)] = []
        for partition in partitions {
            let marks = try producer.watermarks(partition, timeout: .seconds(2))
            let start = startsAtEarliest ? marks.low : marks.high
            let position = positions[partition].flatMap { $0 } ?? committed[partition].flatMap { $0 } ?? start
            if marks.high > position { waiting.append((partition, marks.high - position)) }
        }
        return waiting
    }

    /// The group's committed offsets, asked a few times: the consumer's requests share connections
    /// with its fetches, and a failing fetch takes the requests beside it down too.
    private func committedOffsets(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartition: Int64?] {
        var attempt = 0
        while true {
            do {
                return try consumer.committedOffsets(partitions, timeout: .seconds(2))
            } catch where error.kind == .transient && attempt < 4 {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }
}
