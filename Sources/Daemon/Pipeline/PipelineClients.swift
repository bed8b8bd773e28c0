import Kafka
import Logging
import Synchronization

/// The Kafka side of a pipeline, wired together: the consumer, the producer, the ledger that
/// stores offsets once outputs are delivered, and the sender that re-sends failed outputs.
struct PipelineClients {
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let ledger: InFlightLedger
    let sender: RecordSender
    /// Exactly-once delivery only: the open transaction's state shared with the senders.
    let transaction: TransactionState?

    /// What the clients report back to the pipeline.
    struct Handlers {
        /// An output was delivered (its record is finished); in exactly-once delivery, with the
        /// open transaction's state, whose commit makes it count.
        let delivered: @Sendable (InFlightLedger.Pending, DeliveryReport, TransactionState?) -> Void
        /// An output failed and will be sent again.
        let retried: @Sendable (_ topic: String, KafkaError) -> Void
        /// Output can no longer be delivered.
        let fatal: @Sendable (String) -> Void
    }

    /// Creates the clients from the settings: the consumer's fetch sizes follow the in-flight
    /// limits, and the producer accepts the largest input (dead-letter records carry it).
    static func make(settings: DaemonSettings, bootstrap: String, telemetry: Telemetry, logger: Logger,
                     handlers: Handlers) throws(PipelineError) -> PipelineClients {
        var client = KafkaClientConfiguration(bootstrapServers: bootstrap)
        client.properties = settings.kafkaProperties
        let transactional = settings.delivery == .exactlyOnce
        if transactional {
            // Passed to the producer as a typed setting (it bounds message.timeout.ms); the
            // consumer would only warn about a producer property.
            client.properties["transaction.timeout.ms"] = nil
        }
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: consumerConfiguration(client, settings), logger: logger)
        } catch {
            throw .cannotCreateConsumer(error)
        }
        // Exactly-once: offsets are committed only inside transactions (Transactions), never
        // stored for the consumer's own commits, which would commit them outside.
        let ledger = transactional ? InFlightLedger { _, _ in } : InFlightLedger { [logger] partition, next in
            do {
                try consumer.storeOffset(partition, nextOffset: next)
            } catch {
                logger.debug("offset not stored (partition revoked?)", metadata: ["partition": "\(partition)", "error": "\(error)"])
            }
        }
        // The sender needs the producer and the producer's delivery handler needs the sender:
        // weakly, or sender -> producer -> its callbacks -> this box -> sender is a cycle that
        // outlives the pipeline (LeakSanitizer reported it at every exit). The poll loop and the
        // batch processor hold the sender until the drain has closed the producer.
        let senderBox = Mutex(WeakSender())
        let transactionalID = settings.effectiveTransactionalID
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: producerConfiguration(client, settings), logger: logger, onDelivery: { report in
                senderBox.withLock { $0.sender }?.handle(report)
            }, onError: { error in
                telemetry.kafkaError(error)
                if error.kind == .fatal && transactional && error.isFencing {
                    handlers.fatal(Transactions.fencedMessage(transactionalID))
                } else if error.kind == .fatal {
                    handlers.fatal("fatal Kafka producer error: \(error); records not yet delivered will be read again after a restart")
                } else {
                    logger.log(level: error.kind == .denied ? .error : .warning, "Kafka producer error", metadata: ["error": "\(error)"])
                }
            }, onStatistics: { stats in
                telemetry.producerStatistics(stats)
            })
        } catch {
            consumer.close()
            throw .cannotCreateProducer(error)
        }
        let transaction = transactional ? TransactionState() : nil
        if transactional {
            do {
                try initTransactions(producer, id: transactionalID, logger: logger)
            } catch {
                producer.close(timeout: .seconds(1))
                consumer.close()
                throw .cannotInitTransactions(transactionalID: transactionalID, error)
            }
        }
        let sender = RecordSender(producer: producer, ledger: ledger, dlqTopic: settings.dlqTopic, transaction: transaction, logger: logger,
                                  onDelivered: handlers.delivered, onRetry: handlers.retried, onFatal: handlers.fatal)
        senderBox.withLock { $0.sender = sender }
        return PipelineClients(consumer: consumer, producer: producer, ledger: ledger, sender: sender, transaction: transaction)
    }

    /// Registers the transactional id, fencing an earlier instance with the same id and aborting
    /// its open transaction (a restart after a crash). Runs before the subscription, so the
    /// consumer reads the group's offsets only once that transaction is settled. The coordinator
    /// may take a while to appear (a broker starting): retriable failures are tried again for
    /// about a minute.
    private static func initTransactions(_ producer: KafkaProducer, id: String, logger: Logger) throws(KafkaError) {
        var attempt = 0
        while true {
            do {
                try producer.initTransactions(timeout: .seconds(10))
                logger.info("exactly-once delivery: transactions initialised", metadata: ["transactional_id": .string(id)])
                return
            } catch where error.retriable && attempt < 5 {
                attempt += 1
                logger.warning("initialising transactions failed for a passing reason; trying again", metadata: ["error": "\(error)"])
            }
        }
    }

    static func consumerConfiguration(_ client: KafkaClientConfiguration, _ settings: DaemonSettings) -> KafkaConsumerConfiguration {
        var config = KafkaConsumerConfiguration(client: client, groupID: settings.groupID)
        config.autoCommit = settings.delivery == .atLeastOnce
        // Keep librdkafka's prefetch small: records it holds are memory the in-flight limits
        // cannot see.
        config.client.properties["queued.max.messages.kbytes"] = config.client.properties["queued.max.messages.kbytes"]
            ?? String(max(1024, min(65536, settings.maxInflightBytes / 4096)))
        // One fetch response lands in that queue whole: keep it within the in-flight bytes too.
        config.client.properties["fetch.max.bytes"] = config.client.properties["fetch.max.bytes"]
            ?? String(max(1 << 20, min(52_428_800, settings.maxInflightBytes / 2)))
        config.client.statisticsInterval = .seconds(1)  // lag and readiness
        // A record should not wait half a second in a broker's fetch (librdkafka's default wait)
        // on a quiet topic: labelled posts are wanted promptly.
        config.client.properties["fetch.wait.max.ms"] = config.client.properties["fetch.wait.max.ms"] ?? "50"
        return config
    }

    static func producerConfiguration(_ client: KafkaClientConfiguration, _ settings: DaemonSettings) -> KafkaProducerConfiguration {
        var config = KafkaProducerConfiguration(client: client)
        config.client.statisticsInterval = .seconds(1)
        // Dead-letter records carry the input's bytes: the producer must accept the largest input.
        config.maxMessageBytes = max(1_000_000, settings.maxMessageBytes + 64 * 1024)
        if settings.delivery == .exactlyOnce {
            config.transactionalID = settings.effectiveTransactionalID
            if let ms = settings.kafkaProperties["transaction.timeout.ms"].flatMap({ Int($0) }) {
                config.transactionTimeout = .milliseconds(ms)
            }
        }
        return config
    }
}

/// The delivery handler's reference to the sender (see ``PipelineClients/make``).
private struct WeakSender: Sendable {
    weak var sender: RecordSender?
}
