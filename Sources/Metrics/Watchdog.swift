import Synchronization
/// What one ``Watchdog/loopAlive()`` call did.
public enum WatchdogPing: Sendable, Equatable {
    /// No watchdog is configured (no `WATCHDOG_USEC`, or it belongs to another process).
    case disabled
    /// A ping went out less than half an interval ago.
    case notDue
    /// `WATCHDOG=1` was sent.
    case sent
    /// Sending failed; the next attempt waits half an interval like a successful one.
    case failed(SystemdNotifyError)
}

/// Turns the poll loop's liveness into systemd watchdog pings.
///
/// The poll loop calls ``loopAlive()`` on every iteration; the call sends `WATCHDOG=1` when
/// half the watchdog interval has passed since the previous ping. There is deliberately no
/// timer: if the loop stalls, the pings stop and systemd restarts the service, which is the
/// whole point of the watchdog.
public final class Watchdog: Sendable {
    /// The interval systemd enforces; pings go out at most every half of it.
    public let interval: Duration?
    private let notifier: SystemdNotifier
    private let clock = ContinuousClock()
    private let lastPing = Mutex<ContinuousClock.Instant?>(nil)

    /// - Parameters:
    ///   - notifier: where pings go.
    ///   - interval: overrides `notifier.watchdogInterval` (from `WATCHDOG_USEC`).
    public init(notifier: SystemdNotifier, interval: Duration? = nil) {
        self.notifier = notifier
        self.interval = notifier.isEnabled ? (interval ?? notifier.watchdogInterval) : nil
    }

    /// Whether pings can be sent at all.
    public var isEnabled: Bool { interval != nil }

    /// Reports that the poll loop completed an iteration; sends `WATCHDOG=1` if one is due.
    /// Cheap when no ping is due (a clock read and a lock).
    @discardableResult
    public func loopAlive() -> WatchdogPing {
        guard let interval else { return .disabled }
        let now = clock.now
        let due = lastPing.withLock { last -> Bool in
            if let last, now - last < interval / 2 { return false }
            last = now
            return true
        }
        guard due else { return .notDue }
        do {
            try notifier.watchdog()
            return .sent
        } catch {
            return .failed(error)
        }
    }
}
