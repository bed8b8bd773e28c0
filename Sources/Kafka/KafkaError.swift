import CRdKafka

/// An error from librdkafka or from this layer's own checks.
///
/// Every error is classified (``Kind``) so a caller can decide between retrying, dead-lettering a
/// record and exiting, without matching on librdkafka's numeric codes itself.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What a caller should do about an error.
    public enum Kind: String, Sendable, CaseIterable {
        /// A setting was rejected at start-up; fix the configuration.
        case configuration
        /// The client cannot go on (librdkafka raised a fatal error: a fenced or broken idempotent
        /// producer, ...): exit. Only errors librdkafka itself marks fatal, and the few codes that
        /// mean the same, are of this kind.
        case fatal
        /// The cluster refuses this client: credentials rejected, an ACL missing, TLS failing.
        /// librdkafka keeps retrying (a transport or credential hiccup heals by itself); if it
        /// persists, an operator must fix the credentials or the ACLs.
        case denied
        /// A passing condition (a broker down, a timeout); librdkafka retries by itself.
        case transient
        /// The current transaction cannot commit (a write or an offset commit failed, the
        /// coordinator refused it): abort it, read its input again and retry in a new one. The
        /// producer itself stays usable.
        case abortable
        /// The producer's local queue is full: wait for deliveries, then retry.
        case queueFull
        /// A message is larger than the client's or the broker's limit: it can never be delivered.
        case messageTooLarge
        /// The broker refuses this one record for good (invalid record, bad timestamp): sending it
        /// again cannot succeed, other records are unaffected.
        case recordRejected
        /// A consumer's position is outside the partition's retained range.
        case offsetOutOfRange
        /// The caller used the API wrongly (an unknown partition, a closed handle).
        case invalidUse
    }

    public let kind: Kind
    /// librdkafka's `rd_kafka_resp_err_t` code, or 0 where the error is this layer's own.
    public let code: Int32
    /// librdkafka's symbolic name for ``code`` (for example `MSG_SIZE_TOO_LARGE`), empty when none.
    public let codeName: String
    /// What went wrong and, where there is something to do, what to do.
    public let message: String
    /// librdkafka marked the failed call as one to make again as it was (a timeout, a coordinator
    /// moving): the transactional calls are resumable after such an error.
    public let retriable: Bool

    public init(kind: Kind, code: Int32 = 0, codeName: String = "", message: String, retriable: Bool = false) {
        self.kind = kind
        self.code = code
        self.codeName = codeName
        self.message = message
        self.retriable = retriable
    }

    /// Builds an error from a librdkafka response code, classifying it.
    init(_ err: rd_kafka_resp_err_t, _ context: String, fatal: Bool = false) {
        let name = String(cString: rd_kafka_err2name(err))
        let text = String(cString: rd_kafka_err2str(err))
        self.init(kind: fatal ? .fatal : KafkaError.classify(err), code: err.rawValue, codeName: name,
                  message: context.isEmpty ? text : "\(context): \(text)")
    }

    /// Builds an error from a librdkafka error object and destroys that object. The object's
    /// flags decide the kind before its code does: fatal is ``Kind/fatal``, "the transaction
    /// requires abort" is ``Kind/abortable``, and retriable is kept in ``retriable``.
    init(consuming error: OpaquePointer, _ context: String) {
        let code = rd_kafka_error_code(error)
        let fatal = rd_kafka_error_is_fatal(error) != 0
        let requiresAbort = rd_kafka_error_txn_requires_abort(error) != 0
        let retriable = rd_kafka_error_is_retriable(error) != 0
        let text = String(cString: rd_kafka_error_string(error))
        rd_kafka_error_destroy(error)
        let kind: Kind = fatal ? .fatal : requiresAbort ? .abortable : KafkaError.classify(code)
        self.init(kind: kind, code: code.rawValue, codeName: String(cString: rd_kafka_err2name(code)),
                  message: "\(context): \(text)", retriable: retriable && !fatal)
    }

    /// Whether this error means another producer took over this one's `transactional.id` (a
    /// newer instance called `init_transactions` with it): this one must stop for good.
    public var isFencing: Bool {
        ["PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "_FENCED"].contains(codeName)
    }

    public var description: String {
        codeName.isEmpty ? message : "\(message) [\(codeName)]"
    }

    /// Maps a librdkafka code to what a caller should do about it.
    static func classify(_ err: rd_kafka_resp_err_t) -> Kind {
        switch err {
        case RD_KAFKA_RESP_ERR__FATAL,
             RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
             RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
             RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
            return .fatal
        case RD_KAFKA_RESP_ERR__AUTHENTICATION,
             RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
             RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR__SSL:
            return .denied
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return .queueFull
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
             RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
            return .messageTooLarge
        case RD_KAFKA_RESP_ERR_INVALID_RECORD,
             RD_KAFKA_RESP_ERR_INVALID_MSG,
             RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
            return .recordRejected
        case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
            return .offsetOutOfRange
        case RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
             RD_KAFKA_RESP_ERR__STATE, RD_KAFKA_RESP_ERR__DESTROY:
            return .invalidUse
        default:
            return .transient
        }
    }
}

extension String {
    /// Reads the NUL-terminated text librdkafka wrote into a fixed-size error buffer.
    init(cBuffer: [CChar]) {
        let bytes = cBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self.init(decoding: bytes, as: UTF8.self)
    }
}
