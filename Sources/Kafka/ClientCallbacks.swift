import CRdKafka
import Foundation
import Logging
import Synchronization

/// What librdkafka's callbacks hand back to Swift. One instance lives as long as its client handle;
/// librdkafka reaches it through the handle's opaque pointer.
///
/// Rebalance, statistics and error callbacks run inside `poll` on the polling thread; the log
/// callback runs on librdkafka's own threads. Everything here is therefore behind a mutex.
final class ClientCallbacks: Sendable {
    let logger: Logger
    /// Where errors go when the client has no poll loop of its own to report them (the producer).
    let errorSink: (@Sendable (KafkaError) -> Void)?
    /// Where statistics go when the client has no poll loop of its own (the producer).
    let statisticsSink: (@Sendable (ConsumerStatistics) -> Void)?
    /// Where the producer's delivery reports go.
    let deliverySink: (@Sendable (DeliveryReport) -> Void)?
    private let pending = Mutex<[ConsumerEvent]>([])
    private let latestStatistics = Mutex<ConsumerStatistics?>(nil)
    private let assignedOnce = Mutex(false)

    /// Whether the group ever gave this member an assignment (even an empty one).
    var hasBeenAssigned: Bool { assignedOnce.withLock { $0 } }
    func noteAssignment() { assignedOnce.withLock { $0 = true } }

    init(logger: Logger, errorSink: (@Sendable (KafkaError) -> Void)? = nil,
         statisticsSink: (@Sendable (ConsumerStatistics) -> Void)? = nil,
         deliverySink: (@Sendable (DeliveryReport) -> Void)? = nil) {
        self.logger = logger
        self.errorSink = errorSink
        self.statisticsSink = statisticsSink
        self.deliverySink = deliverySink
    }

    func post(_ event: ConsumerEvent) {
        if let errorSink, case .error(let error, _) = event {
            errorSink(error)
            return
        }
        pending.withLock { $0.append(event) }
    }

    /// Takes every event posted since the last call, oldest first.
    func takeEvents() -> [ConsumerEvent] {
        pending.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }

    func record(_ statistics: ConsumerStatistics) {
        latestStatistics.withLock { $0 = statistics }
        if let statisticsSink {
            statisticsSink(statistics)
        } else {
            post(.statistics(statistics))
        }
    }

    var statistics: ConsumerStatistics? { latestStatistics.withLock { $0 } }

    /// Installs the callbacks every client has (log, error, statistics) on a configuration.
    func install(on conf: NativeConfiguration) {
        guard let raw = conf.raw else { return }
        rd_kafka_conf_set_opaque(raw, Unmanaged.passUnretained(self).toOpaque())
        rd_kafka_conf_set_log_cb(raw, logCallback)
        rd_kafka_conf_set_error_cb(raw, errorCallback)
        rd_kafka_conf_set_stats_cb(raw, statisticsCallback)
        if deliverySink != nil { rd_kafka_conf_set_dr_msg_cb(raw, deliveryCallback) }
    }

    /// The instance behind a handle's opaque pointer.
    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientCallbacks? {
        opaque.map { Unmanaged<ClientCallbacks>.fromOpaque($0).takeUnretainedValue() }
    }

    /// librdkafka logs a real out-of-range reset (not the first start of a group) as a warning
    /// with facility OFFSET: "[thrd:main]: posts [3]: offset reset (at offset 42, broker 1) to
    /// BEGINNING: ...". It raises no event for it unless auto.offset.reset=error, so this is
    /// where we see it.
    func noticeOffsetReset(facility: String, message: String) {
        guard facility == "OFFSET", let marker = message.range(of: "]: offset reset") else { return }
        let head = message[..<marker.lowerBound]  // "...: posts [3"
        guard let open = head.lastIndex(of: "["), let partition = Int32(head[head.index(after: open)...]) else { return }
        var topicPart = head[..<open]
        if let separator = topicPart.range(of: ": ", options: .backwards) { topicPart = topicPart[separator.upperBound...] }
        let topic = topicPart.trimmingCharacters(in: .whitespaces)
        guard !topic.isEmpty else { return }
        post(.offsetReset(TopicPartition(topic: topic, partition: partition), detail: message))
    }
}

// MARK: - C callbacks (no captures: they find their ClientCallbacks through the opaque pointer)

private let logCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    rk, level, facility, buffer in
    guard let rk, let callbacks = ClientCallbacks.from(rd_kafka_opaque(rk)) else { return }
    let fac = facility.map { String(cString: $0) } ?? ""
    let text = buffer.map { String(cString: $0) } ?? ""
    // syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug.
    let swiftLevel: Logger.Level = level <= 3 ? .error : level == 4 ? .warning : level <= 6 ? .info : .debug
    callbacks.logger.log(level: swiftLevel, "librdkafka: \(text)", metadata: ["facility": .string(fac)])
    if level <= 4 { callbacks.noticeOffsetReset(facility: fac, message: text) }
}

private let errorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    rk, code, reason, opaque in
    guard let rk, let callbacks = ClientCallbacks.from(opaque) else { return }
    let err = rd_kafka_resp_err_t(rawValue: code)
    let text = reason.map { String(cString: $0) } ?? ""
    if err == RD_KAFKA_RESP_ERR__FATAL {
        // The error callback only says "fatal"; the underlying cause is kept by the handle.
        var buffer = [CChar](repeating: 0, count: 512)
        let cause = rd_kafka_fatal_error(rk, &buffer, buffer.count)
        callbacks.post(.error(KafkaError(cause, "fatal Kafka client error: \(String(cBuffer: buffer))", fatal: true), nil))
    } else {
        callbacks.post(.error(KafkaError(err, text), nil))
    }
}

private let statisticsCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int, UnsafeMutableRawPointer?) -> Int32 = {
    _, json, length, opaque in
    guard let json, let callbacks = ClientCallbacks.from(opaque) else { return 0 }
    if let stats = ConsumerStatistics.parse(UnsafeRawBufferPointer(start: json, count: length)) {
        callbacks.record(stats)
    }
    return 0  // 0: librdkafka frees the JSON buffer.
}

private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, opaque in
    guard let message, let callbacks = ClientCallbacks.from(opaque), let sink = callbacks.deliverySink else { return }
    sink(DeliveryReport(message))
}

/// Test access to the offset-reset log parser (the log callback itself needs a live client).
public enum ClientCallbacksProbe {
    public static func parse(facility: String, _ message: String) -> TopicPartition? {
        var logger = Logger(label: "probe")
        logger.logLevel = .critical
        let callbacks = ClientCallbacks(logger: logger)
        callbacks.noticeOffsetReset(facility: facility, message: message)
        for case .offsetReset(let partition, _) in callbacks.takeEvents() { return partition }
        return nil
    }
}
