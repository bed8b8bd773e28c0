import Dispatch
@testable import postclassd
import Synchronization
import Testing

/// The worker pool must let go of each job once it has run, even when its queue never empties
/// (sustained load). It once kept every run job until the queue drained, so a saturated daemon
/// held every record it had ever processed: about 110 MB/s of growth at batch size 1.
@Suite struct WorkerPoolTests {
    /// How many ``Tracked`` objects are alive.
    final class Census: Sendable {
        let alive = Mutex(0)
        var count: Int { alive.withLock { $0 } }
    }

    /// One per job, held by the job's closure: alive exactly while the pool keeps the job.
    final class Tracked: Sendable {
        let census: Census
        init(_ census: Census) { self.census = census; census.alive.withLock { $0 += 1 } }
        deinit { census.alive.withLock { $0 -= 1 } }
    }

    @Test func jobsThatRanAreFreedWhileTheQueueIsStillBusy() async throws {
        let census = Census()
        let pool = WorkerPool(workers: 1)
        let gate = DispatchSemaphore(value: 0), lastStarted = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let ran = Atomic<Int>(0)
        pool.submit { gate.wait() }  // holds the only worker while the queue fills
        for _ in 0..<500 {
            let tracked = Tracked(census)
            pool.submit { _ = tracked; ran.add(1, ordering: .relaxed) }
        }
        pool.submit { lastStarted.signal(); release.wait() }  // keeps the queue from ever draining
        #expect(census.count == 500)
        gate.signal()
        lastStarted.wait()
        #expect(ran.load(ordering: .relaxed) == 500)
        // The 500 jobs have run and the worker is busy with the last one: none may be kept.
        #expect(census.count == 0, "jobs that already ran are still held by the pool")
        #expect(pool.outstanding == 1)
        release.signal()
    }

    @Test func jobsRunInSubmissionOrderWithinOneWorker() async throws {
        let pool = WorkerPool(workers: 1)
        let order = Mutex<[Int]>([])
        let done = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        pool.submit { gate.wait() }
        for i in 0..<300 { pool.submit { order.withLock { $0.append(i) } } }
        pool.submit { done.signal() }
        gate.signal()
        done.wait()
        #expect(order.withLock { $0 } == Array(0..<300))
    }
}
