import Foundation
import Synchronization

/// A condition that must hold before the daemon is ready to take traffic (`/readyz`, `READY=1`).
public enum ReadinessCondition: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The consumer has joined its group and received a partition assignment.
    case groupJoined
    /// The producer has reached at least one broker.
    case producerConnected
    /// The model is loaded and warmed up.
    case modelLoaded
    /// Input moves: no assigned partition has records waiting while nothing is taken in or
    /// finished. Unlike the others it holds from the start, until a stall is seen.
    case inputMoving

    /// What is missing while the condition does not hold and the daemon gave no reason.
    public var defaultReason: String {
        switch self {
        case .groupJoined: "consumer has not joined its group"
        case .producerConnected: "producer has not reached a broker"
        case .modelLoaded: "model is not loaded"
        case .inputMoving: "input is stalled"
        }
    }

    /// The condition's name, as in logs.
    public var description: String { rawValue }
}

/// The answer to a health or readiness probe: whether it passes, and a one-line explanation.
public struct ProbeResult: Sendable, Equatable {
    /// `true` for HTTP 200, `false` for 503.
    public var passing: Bool
    /// One line for a person reading `curl` output or a systemd status.
    public var message: String

    /// Creates a probe answer.
    public init(passing: Bool, message: String) {
        self.passing = passing
        self.message = message
    }
}

/// Liveness and readiness of the daemon, shared by the poll loop, the daemon's lifecycle code
/// and the metrics server. Thread-safe.
///
/// Liveness comes from ``heartbeat()``, which the poll loop calls every iteration: the process
/// is live while the last heartbeat is younger than the stall threshold. The clock starts at
/// init, so a daemon that never reaches its loop turns unhealthy after one threshold too.
///
/// Readiness is the conjunction of every ``ReadinessCondition``, each set by the daemon with a
/// reason that `/readyz` shows while it does not hold.
public final class HealthState: Sendable {
    private struct State {
        var lastHeartbeat: ContinuousClock.Instant
        var conditions: [ReadinessCondition: (ready: Bool, reason: String)] = [:]
    }

    /// How long the poll loop may go without a heartbeat before `/healthz` fails.
    public let stallThreshold: Duration
    private let clock = ContinuousClock()
    private let state: Mutex<State>

    /// - Parameter stallThreshold: the longest gap between heartbeats that still counts as
    ///   alive; keep it well above the poll timeout and below systemd's `WatchdogSec`.
    public init(stallThreshold: Duration = .seconds(30)) {
        self.stallThreshold = stallThreshold
        self.state = Mutex(State(lastHeartbeat: clock.now, conditions: [.inputMoving: (true, "")]))
    }

    /// Records that the poll loop is alive. Cheap: call it every iteration.
    public func heartbeat() {
        let now = clock.now
        state.withLock { $0.lastHeartbeat = now }
    }

    /// Sets whether `condition` holds; `reason` says what is missing while it does not
    /// (e.g. `consumer has not joined group postclassd (waiting for partition assignment)`).
    /// An empty reason falls back to the condition's ``ReadinessCondition/defaultReason``.
    public func set(_ condition: ReadinessCondition, ready: Bool, reason: String = "") {
        let line = Self.oneLine(reason)
        state.withLock { $0.conditions[condition] = (ready, line) }
    }

    /// Whether every readiness condition holds.
    public var isReady: Bool { readiness.passing }

    /// The `/healthz` answer.
    public var liveness: ProbeResult {
        let last = state.withLock { $0.lastHeartbeat }
        let age = clock.now - last
        let ageText = Self.seconds(age)
        if age <= stallThreshold {
            return ProbeResult(passing: true, message: "ok: poll loop alive, last heartbeat \(ageText) ago")
        }
        return ProbeResult(
            passing: false,
            message: "unhealthy: poll loop stalled, last heartbeat \(ageText) ago "
                + "(threshold \(Self.seconds(stallThreshold)))")
    }

    /// The `/readyz` answer, naming every condition that does not hold.
    public var readiness: ProbeResult {
        let conditions = state.withLock { $0.conditions }
        let missing = ReadinessCondition.allCases.compactMap { condition -> String? in
            guard let entry = conditions[condition] else { return condition.defaultReason }
            if entry.ready { return nil }
            return entry.reason.isEmpty ? condition.defaultReason : entry.reason
        }
        if missing.isEmpty {
            return ProbeResult(passing: true, message: "ready")
        }
        return ProbeResult(passing: false, message: "not ready: " + missing.joined(separator: "; "))
    }

    /// Probe bodies are one line: a multi-line reason (e.g. a librdkafka error) is folded.
    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
    }

    private static func seconds(_ duration: Duration) -> String {
        let (whole, attoseconds) = duration.components
        let value = Double(whole) + Double(attoseconds) / 1e18
        return String(format: "%.1fs", value)
    }
}
