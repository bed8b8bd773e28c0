import Kafka

/// Why the pipeline could not start, or stopped other than by a signal. Each message says what
/// went wrong and what happens to records not yet finished.
enum PipelineError: Error, CustomStringConvertible {
    /// librdkafka refused to create the consumer (a property it rejects).
    case cannotCreateConsumer(KafkaError)
    /// librdkafka refused to create the producer.
    case cannotCreateProducer(KafkaError)
    /// Exactly-once delivery could not register its transactional id (no coordinator, a broker
    /// without transactions, an ACL missing, a transaction timeout the broker refuses).
    case cannotInitTransactions(transactionalID: String, KafkaError)
    /// The subscription was refused (an invalid topic name or pattern).
    case cannotSubscribe(topics: [String], KafkaError)
    /// The consumer reported a fatal error: it cannot go on.
    case fatalConsumerError(KafkaError)
    /// Output can no longer be delivered (a fatal producer error, writes refused past the
    /// retries): `reason` says which and what to do.
    case deliveryStopped(reason: String)

    var description: String {
        switch self {
        case .cannotCreateConsumer(let error): "cannot create the Kafka consumer: \(error)"
        case .cannotCreateProducer(let error): "cannot create the Kafka producer: \(error)"
        case .cannotInitTransactions(let id, let error):
            "cannot initialise Kafka transactions for transactional id \(id): \(error); exactly-once delivery needs brokers with transactions, "
                + "WRITE and DESCRIBE on the transactional id, and transaction.timeout.ms within the broker's transaction.max.timeout.ms"
        case .cannotSubscribe(let topics, let error): "cannot subscribe to \(topics.joined(separator: ",")): \(error)"
        case .fatalConsumerError(let error):
            "fatal Kafka error: \(error); records not yet finished will be read again after a restart"
        case .deliveryStopped(let reason): reason
        }
    }
}
