import CRdKafka
import Logging
import Synchronization

/// A Kafka group consumer over librdkafka.
///
/// One thread polls (``poll(maxMessages:timeout:)``); any thread may store offsets, pause, resume
/// or read statistics. Rebalances are handled inside `poll`: assigned partitions are taken at once
/// (incrementally under cooperative-sticky), and before partitions are given up the offsets stored
/// for them are committed, so the next owner resumes exactly after what this member finished.
/// Both are reported to the caller as ``ConsumerEvent``s in the same batch.
public final class KafkaConsumer: @unchecked Sendable {
    // @unchecked: librdkafka's handle is thread-safe for the calls made here; `handleGuard` keeps
    // every call from other threads (offset store, pause, resume, commit) out of a destroyed handle.
    private let handle: OpaquePointer
    private let queue: OpaquePointer
    private let callbacks: ClientCallbacks
    private let handleGuard = HandleGuard()
    private let logger: Logger
    private let usesCooperativeAssignor: Bool

    /// Creates the consumer. Every property is checked here; a rejected one throws an error quoting
    /// librdkafka's reason.
    public init(configuration: KafkaConsumerConfiguration, logger: Logger) throws(KafkaError) {
        self.logger = logger
        usesCooperativeAssignor = configuration.orderedProperties().last { $0.0 == "partition.assignment.strategy" }?.1.contains("cooperative-sticky") ?? false
        callbacks = ClientCallbacks(logger: logger)
        let conf = try NativeConfiguration()
        try conf.set(configuration.orderedProperties())
        callbacks.install(on: conf)
        if let raw = conf.raw { rd_kafka_conf_set_rebalance_cb(raw, rebalanceCallback) }
        handle = try makeClientHandle(RD_KAFKA_CONSUMER, conf)
        // Serve every callback (rebalance, errors, statistics) from the consumer queue we poll.
        rd_kafka_poll_set_consumer(handle)
        guard let consumerQueue = rd_kafka_queue_get_consumer(handle) else {
            rd_kafka_destroy(handle)
            throw KafkaError(kind: .fatal, message: "librdkafka gave no consumer queue")
        }
        queue = consumerQueue
    }

    deinit {
        close()
    }

    /// Subscribes to topics (replacing any earlier subscription). Partitions arrive later, as
    /// ``ConsumerEvent/assigned(_:)`` from `poll`.
    public func subscribe(_ topics: [String]) throws(KafkaError) {
        let err = try PartitionList.with(topics.map { (TopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA), nil) }) {
            list throws(KafkaError) in rd_kafka_subscribe(handle, list)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "could not subscribe to \(topics.joined(separator: ", "))")
        }
    }

    /// Reads up to `maxMessages` messages, waiting at most `timeout` for the first. Also serves
    /// callbacks, so rebalance, error and statistics events come back in the same batch.
    public func poll(maxMessages: Int, timeout: Duration) -> ConsumerBatch {
        var messages: [ConsumedMessage] = []
        let capacity = max(1, maxMessages)
        // A buffer per call (on the stack at the daemon's poll sizes) keeps the consumer free of
        // state only the polling thread may touch.
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<rd_kafka_message_t>?.self, capacity: capacity) { buffer in
            let count = takeAvailable(into: buffer, capacity: capacity, waitingAtMost: timeout)
            if count > 0 {
                messages.reserveCapacity(count)
                for i in 0..<count {
                    guard let message = buffer[i] else { continue }
                    defer { rd_kafka_message_destroy(message) }
                    absorb(message, into: &messages)
                }
            } else if count < 0 {
                let err = rd_kafka_last_error()
                callbacks.post(.error(KafkaError(err, "consume failed"), nil))
            }
        }
        return ConsumerBatch(messages: messages, events: callbacks.takeEvents())
    }

    /// What is queued now, up to `capacity`; when nothing is, waits at most `timeout` for the
    /// first message and then takes what else is queued. librdkafka's batch call alone would not
    /// do: it waits for a *full* batch until the timeout, which below saturation added up to the
    /// whole timeout (100 ms in the daemon) to every record's latency. Returns librdkafka's count
    /// (negative on error).
    private func takeAvailable(into buffer: UnsafeMutableBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>,
                               capacity: Int, waitingAtMost timeout: Duration) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        let ready = rd_kafka_consume_batch_queue(queue, 0, base, capacity)
        guard ready == 0, timeout > .zero else { return ready }
        guard let first = rd_kafka_consume_queue(queue, max(1, timeout.milliseconds)) else { return 0 }
        base[0] = first
        guard capacity > 1 else { return 1 }
        let more = rd_kafka_consume_batch_queue(queue, 0, base + 1, capacity - 1)
        return 1 + max(0, more)
    }

    private func absorb(_ message: UnsafeMutablePointer<rd_kafka_message_t>, into messages: inout [ConsumedMessage]) {
        let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            messages.append(ConsumedMessage(copying: message, topic: topic))
        } else if err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
            // A consumer error travels as a message whose payload is the error text.
            let text = message.pointee.payload.map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: message.pointee.len), as: UTF8.self)
            } ?? ""
            let tp = topic.isEmpty ? nil : TopicPartition(topic: topic, partition: message.pointee.partition)
            callbacks.post(.error(KafkaError(err, text), tp))
        }
    }

    /// Marks everything before `nextOffset` in a partition as done: the next auto-commit (or the
    /// commit on revoke or close) commits it. Pass the offset of the next record to read, that is
    /// the last finished offset + 1.
    public func storeOffset(_ partition: TopicPartition, nextOffset: Int64) throws(KafkaError) {
        let err = try handleGuard.run("consumer", "store offset \(nextOffset) for \(partition)") { () throws(KafkaError) in
            try PartitionList.with([(partition, nextOffset)]) { list throws(KafkaError) in
                let err = rd_kafka_offsets_store(handle, list)
                // offsets_store reports per-partition failures (e.g. not assigned) in the list.
                if err == RD_KAFKA_RESP_ERR_NO_ERROR, list.pointee.cnt > 0, let elems = list.pointee.elems {
                    return elems[0].err
                }
                return err
            }
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "could not store offset \(nextOffset) for \(partition)")
        }
    }

    /// Commits the stored offsets now and waits at most `timeout` for the broker's answer.
    /// A commit that is not answered in time is left to finish on its own and reported as a
    /// ``KafkaError/Kind/transient`` error (`_TIMED_OUT`).
    public func commit(timeout: Duration = .seconds(10)) throws(KafkaError) {
        let err = try handleGuard.run("consumer", "commit offsets") { Self.commitStored(handle, timeout: timeout) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, err == RD_KAFKA_RESP_ERR__TIMED_OUT ? "offset commit not confirmed within \(timeout)" : "offset commit failed")
        }
    }

    /// Commits the stored offsets and waits at most `timeout` for the answer. librdkafka's own
    /// synchronous commit waits as long as the coordinator takes: with no coordinator (a broker
    /// outage) that is up to `session.timeout.ms`, long enough to stall the poll loop past
    /// systemd's watchdog or a shutdown past `TimeoutStopSec`. "No offset" (nothing new stored
    /// since the last commit) counts as success.
    fileprivate static func commitStored(_ rk: OpaquePointer, timeout: Duration) -> rd_kafka_resp_err_t {
        guard let replies = rd_kafka_queue_new(rk) else { return RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE }
        defer { rd_kafka_queue_destroy(replies) }  // a late reply is dropped with the queue's last reference
        var err = rd_kafka_commit_queue(rk, nil, replies, nil, nil)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let event = rd_kafka_queue_poll(replies, max(1, timeout.milliseconds)) {
                err = rd_kafka_event_error(event)
                rd_kafka_event_destroy(event)
            } else {
                err = RD_KAFKA_RESP_ERR__TIMED_OUT
            }
        }
        return err == RD_KAFKA_RESP_ERR__NO_OFFSET ? RD_KAFKA_RESP_ERR_NO_ERROR : err
    }

    /// The committed offsets of these partitions as the group coordinator has them
    /// (nil: none committed).
    public func committedOffsets(_ partitions: [TopicPartition], timeout: Duration) throws(KafkaError) -> [TopicPartition: Int64?] {
        try handleGuard.run("consumer", "read committed offsets") { () throws(KafkaError) in
            try PartitionList.with(partitions.map { ($0, nil) }) { list throws(KafkaError) in
                let err = rd_kafka_committed(handle, list, timeout.milliseconds)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "could not read committed offsets") }
                return PartitionList.offsets(list)
            }
        }
    }

    /// Where the application reads next in each partition, as librdkafka tracks it locally (the
    /// offset after the last record handed out, or where a seek put it); nil while unknown
    /// (nothing read since the partition was assigned). Asks no broker.
    public func positions(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartition: Int64?] {
        try handleGuard.run("consumer", "read positions") { () throws(KafkaError) in
            try PartitionList.with(partitions.map { ($0, nil) }) { list throws(KafkaError) in
                let err = rd_kafka_position(handle, list)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "could not read positions") }
                return PartitionList.offsets(list)
            }
        }
    }

    /// Stops fetching from these partitions; `poll` must still be called (it keeps the member in
    /// its group). Messages already fetched may still arrive.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try changeFlow(partitions, pause: true)
    }

    /// Starts fetching again from paused partitions, at the position where they stopped.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try changeFlow(partitions, pause: false)
    }

    private func changeFlow(_ partitions: [TopicPartition], pause: Bool) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let err = try handleGuard.run("consumer", pause ? "pause partitions" : "resume partitions") { () throws(KafkaError) in
            try PartitionList.with(partitions.map { ($0, nil) }) { list throws(KafkaError) in
                pause ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
            }
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "could not \(pause ? "pause" : "resume") \(partitions.count) partitions")
        }
    }

    /// Moves the fetch position of partitions to the given next offsets (asynchronously; records
    /// fetched from the old position are discarded by librdkafka).
    public func seek(_ positions: [TopicPartition: Int64]) throws(KafkaError) {
        guard !positions.isEmpty else { return }
        let error = try handleGuard.run("consumer", "seek") { () throws(KafkaError) in
            try PartitionList.with(positions.map { ($0.key, $0.value) }) { list throws(KafkaError) in
                rd_kafka_seek_partitions(handle, list, 0)
            }
        }
        if let error { throw KafkaError(consuming: error, "could not seek \(positions.count) partitions") }
    }

    /// Runs `body` with the handle unless the consumer is closing (for this module's extensions).
    func withHandle<R>(_ what: @autoclosure () -> String, _ body: (OpaquePointer) -> R) throws(KafkaError) -> R {
        try handleGuard.run("consumer", what()) { body(handle) }
    }

    /// The partitions this member owns now.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        try handleGuard.run("consumer", "read the assignment") { () throws(KafkaError) in
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let err = rd_kafka_assignment(handle, &list)
            defer { if let list { rd_kafka_topic_partition_list_destroy(list) } }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "could not read the assignment") }
            return PartitionList.read(list)
        }
    }

    /// The latest statistics snapshot (per-partition lag), if statistics are on.
    public var statistics: ConsumerStatistics? { callbacks.statistics }

    /// The group member id, empty until the member has joined its group.
    public var memberID: String {
        guard let id = rd_kafka_memberid(handle) else { return "" }
        defer { rd_kafka_mem_free(handle, id) }
        return String(cString: id)
    }

    /// The reason the client is unusable, if librdkafka raised a fatal error.
    public var fatalError: KafkaError? {
        var buffer = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(handle, &buffer, buffer.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(err, String(cBuffer: buffer), fatal: true)
    }

    /// Commits stored offsets, leaves the group (revoking its partitions) and frees the handle.
    /// Safe to call more than once; later calls do nothing.
    public func close() {
        // From here on, calls from other threads (a late offset store) are refused rather than
        // racing the destroy below; this waits for any call already inside.
        guard handleGuard.close() else { return }
        let commitResult = Self.commitStored(handle, timeout: .seconds(5))
        if commitResult != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("commit on close failed; the next owner may see records again", metadata: ["error": "\(KafkaError(commitResult, "commit on close"))"])
        }
        // Close leaves the group; the revoke it triggers runs through our rebalance callback.
        // librdkafka's own close waits for the group to settle, which with no broker reachable
        // never happens (it waits in wait-unassign-to-complete until one is back): close in the
        // background and give up after a bound, so a shutdown during an outage still ends.
        guard leaveGroup(within: .seconds(10)) else {
            rd_kafka_queue_destroy(queue)
            _ = Unmanaged.passRetained(callbacks)  // librdkafka's threads still call back through it
            logger.warning("the consumer did not leave its group within 10 s (no broker reachable?); exiting without waiting: the group notices after session.timeout.ms")
            return
        }
        rd_kafka_queue_destroy(queue)
        // librdkafka 2.0.2 aborts (assertion `assignor_state`) when a cooperative-sticky consumer
        // that joined but never got an assignment is destroyed (librdkafka #4312, fixed in 2.3.0).
        // Such a handle is left for process exit instead: a small leak beats a crash at shutdown.
        if callbacks.hasBeenAssigned || !usesCooperativeAssignor {
            rd_kafka_destroy(handle)
        } else {
            // The live handle still calls back through its opaque pointer: keep that object too.
            _ = Unmanaged.passRetained(callbacks)
            logger.notice("Kafka consumer handle not destroyed: it never got an assignment, and librdkafka 2.0.2 would abort (librdkafka issue 4312)")
        }
    }

    /// Closes the consumer (leaving its group) on a queue of its own, serving the callbacks that
    /// come up meanwhile; false if it had not finished within `timeout`.
    private func leaveGroup(within timeout: Duration) -> Bool {
        guard let closing = rd_kafka_queue_new(handle) else { return false }
        defer { rd_kafka_queue_destroy(closing) }
        if let error = rd_kafka_consumer_close_queue(handle, closing) {
            logger.warning("consumer close reported an error", metadata: ["error": "\(KafkaError(consuming: error, "close"))"])
            return true
        }
        let deadline = ContinuousClock.now + timeout
        while rd_kafka_consumer_closed(handle) == 0 {
            guard ContinuousClock.now < deadline else { return false }
            // The consumer queue is forwarded here, so records fetched but never read arrive too.
            // Serving the queue for callbacks only would hand them to librdkafka's callback path,
            // which aborts on a record (assert in rd_kafka_q_serve); taken this way, the rebalance
            // callback still runs and each record is dropped (its offset was never stored).
            if let message = rd_kafka_consume_queue(closing, 100) { rd_kafka_message_destroy(message) }
        }
        return true
    }

    /// Called by librdkafka inside `poll` when the group changes this member's partitions.
    fileprivate static func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                                      _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                      _ callbacks: ClientCallbacks) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let changed = PartitionList.read(partitions)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            callbacks.noteAssignment()
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, partitions) {
                    callbacks.post(.error(KafkaError(consuming: error, "incremental assign failed"), nil))
                }
            } else {
                let result = rd_kafka_assign(rk, partitions)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { callbacks.post(.error(KafkaError(result, "assign failed"), nil)) }
            }
            callbacks.post(.assigned(changed))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            if !lost {
                // Commit what was finished for these partitions before another member takes them,
                // waiting no longer than a few seconds: this runs inside poll, and a poll loop held
                // up longer stops the watchdog and delays every other partition. A commit not
                // confirmed in time only means the next owner may read some records again.
                let result = commitStored(rk, timeout: .seconds(5))
                if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                    callbacks.post(.error(KafkaError(result, "commit on revoke failed"), nil))
                }
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, partitions) {
                    callbacks.post(.error(KafkaError(consuming: error, "incremental unassign failed"), nil))
                }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
            callbacks.post(.revoked(changed, lost: lost))
        default:
            _ = rd_kafka_assign(rk, nil)
            callbacks.post(.error(KafkaError(err, "rebalance failed"), nil))
        }
    }
}

private let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t,
                                               UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                               UnsafeMutableRawPointer?) -> Void = { rk, err, partitions, opaque in
    guard let rk, let callbacks = ClientCallbacks.from(opaque) else { return }
    KafkaConsumer.rebalance(rk, err, partitions, callbacks)
}
