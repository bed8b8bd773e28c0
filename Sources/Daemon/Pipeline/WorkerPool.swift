import Dispatch
import Synchronization

/// Runs jobs on Dispatch with at most `workers` at once, in submission order.
///
/// Inference is CPU-bound and synchronous, so it runs here rather than on Swift's cooperative
/// thread pool, where it would starve every other task of the process.
final class WorkerPool: Sendable {
    private struct State {
        var running = 0
        var pending: [@Sendable () -> Void] = []
        var pendingHead = 0
        var busyNanoseconds: UInt64 = 0
    }

    let workers: Int
    private let queue = DispatchQueue(label: "postclassd.workers", qos: .userInitiated, attributes: .concurrent)
    private let state = Mutex(State())
    private let started = ContinuousClock.now

    init(workers: Int) {
        self.workers = max(1, workers)
    }

    /// Queues a job; it starts as soon as a worker is free.
    func submit(_ job: @escaping @Sendable () -> Void) {
        let startNow = state.withLock { s in
            if s.running < workers {
                s.running += 1
                return true
            }
            s.pending.append(job)
            return false
        }
        if startNow { queue.async { self.run(job) } }
    }

    private func run(_ first: @escaping @Sendable () -> Void) {
        var job: (@Sendable () -> Void)? = first
        while let current = job {
            let start = ContinuousClock.now
            current()
            let elapsed = ContinuousClock.now - start
            job = state.withLock { s in
                s.busyNanoseconds &+= UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000)
                guard s.pendingHead < s.pending.count else {
                    s.running -= 1
                    s.pending.removeAll(keepingCapacity: true)
                    s.pendingHead = 0
                    return nil
                }
                defer { s.pendingHead += 1 }
                return s.pending[s.pendingHead]
            }
        }
    }

    /// Jobs running or waiting.
    var outstanding: Int {
        state.withLock { $0.running + $0.pending.count - $0.pendingHead }
    }

    /// Worker time spent in jobs since the pool started, as a share of all workers' time (0...1).
    var busyRatio: Double {
        let busy = state.withLock { $0.busyNanoseconds }
        let wall = (ContinuousClock.now - started) / .nanoseconds(1)
        return wall > 0 ? min(1, Double(busy) / (wall * Double(workers))) : 0
    }
}
