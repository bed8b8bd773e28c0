import CRdKafka

/// Kafka transactions over librdkafka's transactional producer (a producer whose configuration
/// has a ``KafkaProducerConfiguration/transactionalID``).
///
/// A read-process-write loop runs: ``initTransactions(timeout:)`` once, then per transaction
/// ``beginTransaction()``, sends, ``sendOffsets(_:group:timeout:)`` with the input offsets the
/// sends finish, and ``commitTransaction(timeout:)``; the records and the offsets become visible
/// together (to `read_committed` consumers) or not at all. Every call throws a ``KafkaError``
/// whose kind says what to do: ``KafkaError/Kind/abortable``: ``abortTransaction(timeout:)``
/// and redo the work in a new transaction; ``KafkaError/Kind/fatal`` (fenced by a newer
/// instance with the same id, among others): stop; ``KafkaError/retriable``: make the same call
/// again (librdkafka resumes it). All calls block, and must come from one thread at a time.
extension KafkaProducer {
    /// Registers the transactional id with its coordinator, fencing any older producer with the
    /// same id and aborting (or waiting for) its open transaction. Call once, before any send.
    public func initTransactions(timeout: Duration) throws(KafkaError) {
        try transactionCall("initialise transactions") { rd_kafka_init_transactions(handle, timeout.milliseconds) }
    }

    /// Starts a transaction: sends from now until the commit or abort belong to it.
    public func beginTransaction() throws(KafkaError) {
        try transactionCall("begin a transaction") { rd_kafka_begin_transaction(handle) }
    }

    /// Adds consumed offsets (for each partition, the next offset to read) to the transaction:
    /// the group `group` commits them only if the transaction commits. An empty map does nothing.
    public func sendOffsets(_ offsets: [TopicPartition: Int64], group: ConsumerGroupMetadata, timeout: Duration) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        try transactionCall("add \(offsets.count) input offsets to the transaction") { () throws(KafkaError) in
            try PartitionList.with(offsets.map { ($0.key, $0.value) }) { list throws(KafkaError) in
                group.withPointer { rd_kafka_send_offsets_to_transaction(handle, list, $0, timeout.milliseconds) }
            }
        }
    }

    /// Delivers what is outstanding and commits the transaction. After a retriable error (a
    /// timeout) call it again: librdkafka resumes the commit; after an abortable one, abort.
    public func commitTransaction(timeout: Duration) throws(KafkaError) {
        try transactionCall("commit the transaction") { rd_kafka_commit_transaction(handle, timeout.milliseconds) }
    }

    /// Aborts the transaction: records not yet delivered are purged (reported as failed with
    /// `_PURGE_QUEUE` or `_PURGE_INFLIGHT`), and what was written is marked aborted, so
    /// `read_committed` consumers skip it. Retriable errors: call again.
    public func abortTransaction(timeout: Duration) throws(KafkaError) {
        try transactionCall("abort the transaction") { rd_kafka_abort_transaction(handle, timeout.milliseconds) }
    }

    /// Runs one transactional call inside the send guard; its error object (if any) becomes a
    /// ``KafkaError`` and is freed.
    private func transactionCall(_ what: String, _ body: () throws(KafkaError) -> OpaquePointer?) throws(KafkaError) {
        guard let error = try sendGuard.run("producer", what, body) else { return }
        throw KafkaError(consuming: error, "could not \(what)")
    }
}

/// A consumer's group identity at one moment (group id, generation, member id), which
/// ``KafkaProducer/sendOffsets(_:group:timeout:)`` hands to the coordinator so that offsets
/// from a member that has since lost its partitions in a rebalance are refused (KIP-447).
/// Take a fresh one for every transaction: the generation changes with each rebalance.
public final class ConsumerGroupMetadata {
    private let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        rd_kafka_consumer_group_metadata_destroy(pointer)
    }

    func withPointer<R>(_ body: (OpaquePointer) -> R) -> R {
        body(pointer)
    }
}

/// The consumer's side of a transaction.
extension KafkaConsumer {
    /// The consumer's current group metadata, for ``KafkaProducer/sendOffsets(_:group:timeout:)``.
    public func groupMetadata() throws(KafkaError) -> ConsumerGroupMetadata {
        let pointer = try withHandle("read the group metadata") { rd_kafka_consumer_group_metadata($0) }
        guard let pointer else {
            throw KafkaError(kind: .invalidUse, message: "the consumer has no group metadata (is group.id set?)")
        }
        return ConsumerGroupMetadata(pointer)
    }
}
