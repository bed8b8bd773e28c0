import Dispatch

/// Intra-op parallelism: one operation split into contiguous slices that run at once on
/// Dispatch's pool, the caller's thread included.
///
/// Kernels that take a `threads` argument use this instead of OpenBLAS's own threads: a product
/// split into slices runs each slice as a single-threaded sgemm, and the element-wise work between
/// products (softmax, GELU, LayerNorm) is split the same way, so no core idles or spins between
/// products. Callers that pass `threads > 1` set `BLASThreads.set(1)` once at start-up.
enum Parallel {
    /// Splits `0..<count` into at most `threads` contiguous ranges whose bounds are multiples of
    /// `granularity` (except the end), and runs `body` on each; returns when all have run.
    /// With one range, `body` runs on the caller's thread without touching Dispatch.
    static func forEachSlice(count: Int, threads: Int, granularity: Int = 1, _ body: (Range<Int>) -> Void) {
        let ranges = slices(count: count, parts: threads, granularity: granularity)
        if ranges.count <= 1 {
            if let only = ranges.first { body(only) }
            return
        }
        // Kernels hand `body` raw pointers and write disjoint slices through them, which the
        // compiler cannot check: the closure crosses to other threads under that contract, and
        // concurrentPerform returns only after every slice has run.
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: ranges.count) { i in body(ranges[i]) }
    }

    /// `0..<count` cut into at most `parts` non-empty ranges of nearly equal size, each starting at a
    /// multiple of `granularity`.
    static func slices(count: Int, parts: Int, granularity: Int = 1) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let g = max(1, granularity)
        let units = (count + g - 1) / g
        let n = max(1, min(parts, units))
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(n)
        for i in 0..<n {
            let lower = min(count, units * i / n * g)
            let upper = min(count, units * (i + 1) / n * g)
            if lower < upper { ranges.append(lower..<upper) }
        }
        return ranges
    }
}
