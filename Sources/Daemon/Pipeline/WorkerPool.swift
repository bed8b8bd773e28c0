import Dispatch
import Synchronization

/// Runs jobs on Dispatch with at most `workers` at once, in submission order.
///
/// Inference is CPU-bound and synchronous, so it runs here rather than on Swift's cooperative
/// thread pool, where it would starve every other task of the process.
final class WorkerPool: Sendable {
    private struct State {
        var running = 0
        /// Jobs waiting, oldest first from `pendingHead`. A taken slot is set to nil at once so
        /// the job (and the records its closure holds) is freed when it finishes, even while the
        /// queue never empties, as it does not under sustained load.
        var pending: [(@Sendable () -> Void)?] = []
        var pendingHead = 0
        var busyNanoseconds: UInt64 = 0

        mutating func takeNext() -> (@Sendable () -> Void)? {
            guard pendingHead < pending.count else {
                pending.removeAll(keepingCapacity: true)
                pendingHead = 0
                return nil
            }
            let job = pending[pendingHead]
            pending[pendingHead] = nil
            pendingHead += 1
            // Drop the taken prefix once it is most of the array: amortised O(1) per job, and
            // the array never outgrows twice the jobs actually waiting.
            if pendingHead >= 64 && pendingHead * 2 >= pending.count {
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
            return job
        }
    }

    let workers: Int
    private let queue = DispatchQueue(label: "postclassd.workers", qos: .userInitiated, attributes: .concurrent)
    private let state = Mutex(State())
    private let started = ContinuousClock.now

    /// Called on the worker after each job, once the pool counts it as done.
    private let onJobFinished: (@Sendable () -> Void)?

    init(workers: Int, onJobFinished: (@Sendable () -> Void)? = nil) {
        self.workers = max(1, workers)
        self.onJobFinished = onJobFinished
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
                guard let next = s.takeNext() else {
                    s.running -= 1
                    return nil
                }
                return next
            }
            onJobFinished?()
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
