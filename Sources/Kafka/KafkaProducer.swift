import CRdKafka
import Dispatch
import Foundation
import Logging
import Synchronization

extension DeliveryReport {
    /// Reads a delivery report that librdkafka hands to the delivery callback.
    init(_ message: UnsafePointer<rd_kafka_message_t>) {
        let m = message.pointee
        token = UInt64(UInt(bitPattern: m._private))
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        topicPartition = TopicPartition(topic: topic, partition: m.partition)
        if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            offset = m.offset
            error = nil
        } else {
            offset = nil
            error = KafkaError(m.err, "delivery to \(topic) failed")
        }
    }
}

/// A Kafka producer over librdkafka.
///
/// Every record that ``send(_:token:timeout:)`` accepts gets exactly one ``DeliveryReport`` through
/// the `onDelivery` handler, on the producer's own delivery thread, so a caller can hold back
/// offsets until its output is really written. Handlers must be quick and thread-safe.
public final class KafkaProducer: @unchecked Sendable {
    // @unchecked: librdkafka's producer handle is thread-safe; `closed` makes close run once, and
    // `sendGuard` keeps every send out of a destroyed handle.
    let handle: OpaquePointer
    let sendGuard = HandleGuard()
    private let callbacks: ClientCallbacks
    private let poller: Poller
    private let closed = Mutex(false)
    private let logger: Logger

    /// Creates the producer and starts its delivery thread.
    /// - Parameters:
    ///   - onDelivery: called once per accepted record with its outcome.
    ///   - onError: called for client-level errors (all brokers down, a fatal idempotence error).
    ///   - onStatistics: called every `statistics.interval.ms` (broker connection states).
    public init(configuration: KafkaProducerConfiguration, logger: Logger,
                onDelivery: @escaping @Sendable (DeliveryReport) -> Void,
                onError: @escaping @Sendable (KafkaError) -> Void = { _ in },
                onStatistics: @escaping @Sendable (ConsumerStatistics) -> Void = { _ in }) throws(KafkaError) {
        self.logger = logger
        callbacks = ClientCallbacks(logger: logger, errorSink: onError, statisticsSink: onStatistics, deliverySink: onDelivery)
        let conf = try NativeConfiguration()
        try conf.set(configuration.orderedProperties())
        callbacks.install(on: conf)
        handle = try makeClientHandle(RD_KAFKA_PRODUCER, conf)
        poller = Poller(handle: handle)
        poller.start()
    }

    deinit {
        close(timeout: .seconds(5))
    }

    /// Queues a record for delivery. When the local queue is full it waits up to `timeout` for
    /// deliveries to make room, then throws ``KafkaError/Kind/queueFull``. A record the client can
    /// never send (too large, unknown partition) throws at once; no report follows a throw.
    public func send(_ record: ProducerRecord, token: UInt64, timeout: Duration = .seconds(30)) throws(KafkaError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            guard let err = try sendGuard.enter({ () throws(KafkaError) in produce(record, token: token) }) else {
                throw KafkaError(kind: .invalidUse, message: "the producer is closed: a record for \(record.topic) was not sent")
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL, clock.now < deadline else {
                throw KafkaError(err, "could not queue a record for \(record.topic)")
            }
            // The delivery thread drains the queue; wait a moment and try again.
            Thread.sleep(forTimeInterval: 0.001)
        }
    }

    /// One `rd_kafka_produceva` call. The payload is copied (RD_KAFKA_MSG_F_COPY); the headers
    /// object passes to librdkafka on success and is destroyed here otherwise.
    private func produce(_ record: ProducerRecord, token: UInt64) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer? = record.headers.isEmpty ? nil : rd_kafka_headers_new(record.headers.count)
        defer { if let headers { rd_kafka_headers_destroy(headers) } }
        if let headers {
            for header in record.headers {
                let err = withBytes(header.value) { value in
                    rd_kafka_header_add(headers, header.key, -1, value.baseAddress, value.count)
                }
                if err != RD_KAFKA_RESP_ERR_NO_ERROR { return err }
            }
        }
        let err = record.topic.withCString { topic in
            withBytes(record.key) { key in
                withBytes(record.value) { value in
                    // At most 8 fields; a stack buffer keeps the hot path free of allocation.
                    withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 8) { vus in
                        var count = 0
                        func add(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t.__Unnamed_union_u) -> Void) {
                            var vu = rd_kafka_vu_t()
                            vu.vtype = type
                            fill(&vu.u)
                            vus.initializeElement(at: count, to: vu)
                            count += 1
                        }
                        add(RD_KAFKA_VTYPE_TOPIC) { $0.cstr = topic }
                        add(RD_KAFKA_VTYPE_MSGFLAGS) { $0.i = RD_KAFKA_MSG_F_COPY }
                        add(RD_KAFKA_VTYPE_OPAQUE) { $0.ptr = UnsafeMutableRawPointer(bitPattern: UInt(token)) }
                        if record.key != nil {
                            add(RD_KAFKA_VTYPE_KEY) { $0.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress); $0.mem.size = key.count }
                        }
                        if record.value != nil {
                            add(RD_KAFKA_VTYPE_VALUE) { $0.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress); $0.mem.size = value.count }
                        }
                        if let partition = record.partition {
                            add(RD_KAFKA_VTYPE_PARTITION) { $0.i32 = partition }
                        }
                        if let timestamp = record.timestampMs {
                            add(RD_KAFKA_VTYPE_TIMESTAMP) { $0.i64 = timestamp }
                        }
                        if let headers {
                            add(RD_KAFKA_VTYPE_HEADERS) { $0.headers = headers }
                        }
                        defer { vus.baseAddress?.deinitialize(count: count) }
                        guard let error = rd_kafka_produceva(handle, vus.baseAddress, count) else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                        let code = rd_kafka_error_code(error)
                        rd_kafka_error_destroy(error)
                        return code
                    }
                }
            }
        }
        if err == RD_KAFKA_RESP_ERR_NO_ERROR { headers = nil }  // librdkafka owns them now
        return err
    }

    /// Records queued or in flight, not yet reported.
    public var outstanding: Int { sendGuard.enter { Int(rd_kafka_outq_len(handle)) } ?? 0 }

    /// Waits until every queued record has been reported, or throws after `timeout` saying how
    /// many are still outstanding.
    public func flush(timeout: Duration) throws(KafkaError) {
        let err = try sendGuard.run("producer", "flush") { rd_kafka_flush(handle, timeout.milliseconds) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "flush timed out with \(outstanding) records not yet delivered")
        }
    }

    /// A partition's low and high watermarks (first offset kept, offset of the next record
    /// written), asked of its leader: blocks up to `timeout`. Asked through the producer because
    /// its connections carry no fetches: a consumer whose fetch responses keep failing (too large
    /// for `receive.message.max.bytes`) loses every request that shares their connection.
    public func watermarks(_ partition: TopicPartition, timeout: Duration) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1, high: Int64 = -1
        let err = try sendGuard.run("producer", "query the watermarks of \(partition)") {
            rd_kafka_query_watermark_offsets(handle, partition.topic, partition.partition, &low, &high, timeout.milliseconds)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "could not query the watermarks of \(partition)") }
        return (low, high)
    }

    /// The reason the producer is unusable, if librdkafka raised a fatal error.
    public var fatalError: KafkaError? {
        var buffer = [CChar](repeating: 0, count: 512)
        guard let err = sendGuard.enter({ rd_kafka_fatal_error(handle, &buffer, buffer.count) }),
              err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(err, String(cBuffer: buffer), fatal: true)
    }

    /// Flushes for up to `timeout`, stops the delivery thread and frees the handle. Records still
    /// undelivered after the timeout are purged and reported as failed. Sends made after that throw
    /// (``KafkaError/Kind/invalidUse``); the handle is destroyed only once no send is inside it.
    /// Later calls do nothing.
    public func close(timeout: Duration) {
        let first = closed.withLock { wasClosed in
            defer { wasClosed = true }
            return !wasClosed
        }
        guard first else { return }
        do { try flush(timeout: timeout) } catch {
            logger.warning("producer closing with undelivered records; they are reported as failed", metadata: ["error": "\(error)"])
            _ = rd_kafka_purge(handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
            _ = rd_kafka_flush(handle, 1000)  // serve the purge reports
        }
        _ = sendGuard.close()
        poller.stopAndWait()
        rd_kafka_destroy(handle)
    }
}

/// The producer's delivery thread: it serves delivery reports and errors until stopped. It holds
/// the handle, not the producer, so the producer can still be released and closed by `deinit`.
private final class Poller: @unchecked Sendable {
    // @unchecked: `handle` is only polled here, and librdkafka allows polling from any thread.
    private let handle: OpaquePointer
    private let stopRequested = Atomic<Bool>(false)
    private let exited = DispatchSemaphore(value: 0)

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    func start() {
        let thread = Thread { [self] in
            while !stopRequested.load(ordering: .acquiring) {
                rd_kafka_poll(handle, 100)
            }
            exited.signal()
        }
        thread.name = "kafka-producer-poll"
        thread.start()
    }

    func stopAndWait() {
        stopRequested.store(true, ordering: .releasing)
        exited.wait()
    }
}

/// Runs `body` with the bytes of an optional array; an empty or absent array gives an empty buffer.
private func withBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    return bytes.withUnsafeBytes(body)
}
