#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Word -> row lookup over the mapped bytes of a `words.txt` (one UTF-8 word per line, line i
/// naming row i): an open-addressing hash table of row numbers, with the words themselves left in
/// the mapping.
///
/// Words are compared byte for byte, not as `String`s: `String` equality is canonical equivalence
/// (a decomposed "한" would equal the composed one), while the reference's Python `dict` compares
/// code points, and the two must find the same rows. Keeping only 12 bytes per word in arrays also
/// makes loading GloVe's 400,000 words a single pass with no per-word allocation.
struct WordIndex: Sendable {
    private let words: MappedFile
    /// Line i is the bytes `starts[i] ..< ends[i]` of the file (without its "\n").
    private let starts: [Int32]
    private let ends: [Int32]
    /// Row numbers by hash, -1 for an empty slot; the capacity is a power of two at least twice
    /// the word count, so probe sequences stay short.
    private let slots: [Int32]

    /// The number of lines (words).
    var count: Int { starts.count }

    /// Indexes the lines of `words`. A repeated word keeps its first row, as in the reference;
    /// tools/convert_glove.py rejects duplicates, so a converted table has none.
    init(words: MappedFile) {
        self.words = words
        var starts: [Int32] = [], ends: [Int32] = []
        if let base = words.base?.assumingMemoryBound(to: UInt8.self) {
            var lineStart = 0
            for i in 0..<words.size where base[i] == UInt8(ascii: "\n") {
                starts.append(Int32(lineStart)); ends.append(Int32(i))
                lineStart = i + 1
            }
            if lineStart < words.size { starts.append(Int32(lineStart)); ends.append(Int32(words.size)) }
        }
        var capacity = 16
        while capacity < 2 * starts.count { capacity *= 2 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        if let base = words.base?.assumingMemoryBound(to: UInt8.self) {
            for row in starts.indices {
                let word = UnsafeBufferPointer(start: base + Int(starts[row]), count: Int(ends[row] - starts[row]))
                var slot = Self.hash(word) & mask
                var duplicate = false
                while slots[slot] >= 0 {
                    let other = Int(slots[slot])
                    if Self.equal(word, UnsafeBufferPointer(start: base + Int(starts[other]), count: Int(ends[other] - starts[other]))) {
                        duplicate = true
                        break
                    }
                    slot = (slot + 1) & mask
                }
                if !duplicate { slots[slot] = Int32(row) }
            }
        }
        self.starts = starts
        self.ends = ends
        self.slots = slots
    }

    /// The row of the word whose UTF-8 bytes are `word`, or `nil`.
    func row(of word: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = words.base?.assumingMemoryBound(to: UInt8.self) else { return nil }
        let mask = slots.count - 1
        var slot = Self.hash(word) & mask
        while slots[slot] >= 0 {
            let row = Int(slots[slot])
            if Self.equal(word, UnsafeBufferPointer(start: base + Int(starts[row]), count: Int(ends[row] - starts[row]))) {
                return row
            }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// The word on line `row` (`0..<count`).
    func word(atRow row: Int) -> String {
        guard let base = words.base?.assumingMemoryBound(to: UInt8.self) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: base + Int(starts[row]), count: Int(ends[row] - starts[row])),
                      as: UTF8.self)
    }

    /// 64-bit FNV-1a, folded to `Int`.
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        return memcmp(pa, pb, a.count) == 0
    }
}
