import Kafka

/// Rebalances, errors, offset resets and statistics, as the consumer reports them.
extension PollLoop {
    /// Handles a poll's events. Returns an error when the daemon must stop.
    mutating func handle(_ events: [ConsumerEvent]) -> PipelineError? {
        // Exactly-once: a transaction holding output for partitions revoked (or assigned afresh)
        // cannot commit their offsets; it is aborted once the events are handled.
        var abortBecause: String?
        for event in events {
            switch event {
            case .assigned(let partitions):
                if transactions != nil, !partitions.filter(assigned.contains).isEmpty {
                    abortBecause = "partitions assigned again without being revoked"
                }
                assign(partitions)
            case .revoked(let partitions, let lost):
                if transactions != nil { abortBecause = lost ? "partitions lost" : "partitions revoked" }
                ledger.revoked(partitions)
                forgetReadState(of: Set(partitions))
                pipeline.counters.withLock { $0.rebalances += 1 }
                telemetry.revoked(partitions, lost: lost)
                logger.info(lost ? "partitions lost (their records will be read again by their next owner)" : "partitions revoked",
                            metadata: ["partitions": .string(partitions.sorted().map(\.description).joined(separator: ","))])
            case .error(let error, let partition):
                telemetry.kafkaError(error)
                if error.kind == .fatal { return .fatalConsumerError(error) }
                // Everything else librdkafka retries by itself (a broker down, a TLS or SASL
                // hiccup); a refusal that persists shows in readiness and in this log.
                logger.log(level: error.kind == .denied ? .error : .warning, "Kafka error",
                           metadata: ["error": "\(error)", "partition": "\(partition.map(\.description) ?? "-")"])
            case .offsetReset(let partition, let detail):
                pipeline.counters.withLock { $0.offsetResets += 1 }
                telemetry.metrics.offsetReset(topic: partition.topic)
                logger.error("offset out of range: records were skipped or will be read again; the partition was reset by auto.offset.reset",
                             metadata: ["partition": "\(partition)", "detail": .string(detail)])
            case .statistics(let stats):
                telemetry.consumerStatistics(stats, assigned: assigned)
            }
        }
        if let why = abortBecause { return abortTransaction(reason: "rebalance", because: why) }
        return nil
    }

    private mutating func assign(_ partitions: [TopicPartition]) {
        let stale = partitions.filter(assigned.contains)
        if !stale.isEmpty {
            // Assigned again without a revoke in between: what this loop held for them belongs
            // to the old assignment.
            forgetReadState(of: Set(stale))
            logger.warning("partitions assigned again without being revoked: their unfinished records will be read again",
                           metadata: ["partitions": .string(stale.sorted().map(\.description).joined(separator: ","))])
        }
        ledger.assigned(partitions)
        assigned.formUnion(partitions)
        pipeline.counters.withLock { $0.rebalances += 1 }
        telemetry.metrics.rebalance(kind: .assigned)
        telemetry.health.set(.groupJoined, ready: true)
        logger.info("partitions assigned", metadata: ["partitions": .string(partitions.sorted().map(\.description).joined(separator: ","))])
        if flow != .running { try? clients.consumer.pause(partitions) }
    }

    /// Forgets the loop's state for partitions that are gone (or assigned afresh): their read
    /// positions and the records waiting in the batcher.
    private mutating func forgetReadState(of partitions: Set<TopicPartition>) {
        assigned.subtract(partitions)
        transactions?.forget(partitions)
        for partition in partitions { nextToRead[partition] = nil }
        for record in batcher.remove(partitions: partitions) + removeReady(partitions: partitions) { ledger.abandon(record.message) }
    }
}
