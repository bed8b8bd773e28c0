import Kafka
import Testing

@Suite struct OffsetTrackerTests {
    let p0 = TopicPartition(topic: "t", partition: 0)
    let p1 = TopicPartition(topic: "t", partition: 1)

    @Test("out-of-order finishing only ever advances the contiguous watermark")
    func watermarkIsContiguous() {
        var tracker = OffsetTracker()
        for offset in Int64(10)..<15 { tracker.track(p0, offset: offset) }
        do { let result = tracker.finish(p0, offset: 12); #expect(result == nil) }
        do { let result = tracker.finish(p0, offset: 11); #expect(result == nil) }
        // 10, 11, 12 done: next to read is 13
        do { let result = tracker.finish(p0, offset: 10); #expect(result == 13)  }
        do { let result = tracker.finish(p0, offset: 14); #expect(result == nil) }
        do { let result = tracker.finish(p0, offset: 13); #expect(result == 15) }
        #expect(tracker.pendingCount == 0)
    }

    @Test("gaps in offsets (compaction, transaction markers) do not block the watermark")
    func gapsAreFine() {
        var tracker = OffsetTracker()
        for offset: Int64 in [3, 7, 8, 20] { tracker.track(p0, offset: offset) }
        do { let result = tracker.finish(p0, offset: 7); #expect(result == nil) }
        do { let result = tracker.finish(p0, offset: 3); #expect(result == 8) }
        do { let result = tracker.finish(p0, offset: 20); #expect(result == nil) }
        do { let result = tracker.finish(p0, offset: 8); #expect(result == 21) }
        // 4-6 and 9-19 were never seen: counted, so a client that skips records is visible.
        #expect(tracker.skippedOffsets == 3 + 11)
    }

    @Test("partitions are independent; revoked ones are forgotten; unknown finishes are ignored")
    func partitionsAndRevocation() {
        var tracker = OffsetTracker()
        tracker.track(p0, offset: 0)
        tracker.track(p1, offset: 0)
        tracker.track(p1, offset: 1)
        do { let result = tracker.finish(p1, offset: 0); #expect(result == 1) }
        tracker.forget([p1])
        do { let result = tracker.finish(p1, offset: 1); #expect(result == nil) }
        #expect(tracker.pendingCount == 1)
        do { let result = tracker.finish(p0, offset: 5); #expect(result == nil) }
        do { let result = tracker.finish(p0, offset: 0); #expect(result == 1) }
        do { let result = tracker.finish(p0, offset: 0); #expect(result == nil, "finishing twice does nothing") }
    }

    @Test("redelivered offsets already in flight are not tracked twice")
    func redeliveryIgnored() {
        var tracker = OffsetTracker()
        do { let result = tracker.track(p0, offset: 5); #expect(result) }
        do { let result = tracker.track(p0, offset: 5); #expect(!result) }
        do { let result = tracker.track(p0, offset: 4); #expect(!result) }
        do { let result = tracker.finish(p0, offset: 5); #expect(result == 6) }
        do { let result = tracker.track(p0, offset: 6); #expect(result) }
        // Once everything is finished, an older offset (a seek back after resuming) is still a
        // redelivery, not a record to process again.
        do { let result = tracker.finish(p0, offset: 6); #expect(result == 7) }
        do { let result = tracker.track(p0, offset: 3); #expect(!result) }
        #expect(tracker.skippedOffsets == 0)
    }

    @Test("a long stream with random completion order stores every offset exactly up to the end")
    func longRandomStream() {
        var tracker = OffsetTracker()
        var generator = SystemRandomNumberGenerator()
        let offsets = Array(Int64(0)..<50_000)
        for offset in offsets { tracker.track(p0, offset: offset) }
        var stored: Int64 = 0
        var wentBack = false
        var windowsEndingShort = 0
        // Finish in windows of 64 shuffled records, as parallel batches would.
        for start in stride(from: 0, to: offsets.count, by: 64) {
            for offset in offsets[start..<min(start + 64, offsets.count)].shuffled(using: &generator) {
                if let next = tracker.finish(p0, offset: offset) {
                    wentBack = wentBack || next <= stored
                    stored = next
                }
            }
            if stored != Int64(min(start + 64, offsets.count)) { windowsEndingShort += 1 }
        }
        #expect(!wentBack)
        #expect(windowsEndingShort == 0)
        #expect(stored == 50_000)
        #expect(tracker.pendingCount == 0)
    }
}

