import Foundation
import XCTest
@testable import Model

/// The cross-attention kernel and the post-block helpers against straightforward versions.
final class CrossAttentionTests: XCTestCase {
    private func random(_ count: Int, seed: inout UInt64) -> [Float] {
        (0..<count).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
        }
    }

    /// Queries and keys of different lengths, a different key mask per post.
    func testCrossAttentionMatchesNaiveVersion() throws {
        var seed: UInt64 = 11
        let (batch, queryLength, keyLength, width, heads) = (3, 4, 6, 12, 3)
        let query = try Tensor(shape: [batch * queryLength, width], data: random(batch * queryLength * width, seed: &seed))
        let keyValue = try Tensor(shape: [batch * keyLength, 2 * width], data: random(batch * keyLength * 2 * width, seed: &seed))
        let keyLengths = [6, 2, 5]
        let mask = MultiHeadAttention.additiveMask(lengths: keyLengths, paddedLength: keyLength, hiddenValue: -10_000)
        let out = try MultiHeadAttention.crossAttention(query: query, keyValue: keyValue, batch: batch, queryLength: queryLength,
                                                        keyLength: keyLength, heads: heads, additiveMask: mask)
        XCTAssertEqual(out.shape, [batch * queryLength, width])
        let dh = width / heads
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<queryLength {
                    func q(_ j: Int) -> Double { Double(query.data[(b * queryLength + i) * width + h * dh + j]) }
                    func kv(_ t: Int, _ part: Int, _ j: Int) -> Double { Double(keyValue.data[(b * keyLength + t) * 2 * width + part * width + h * dh + j]) }
                    var scores = (0..<keyLengths[b]).map { t in (0..<dh).map { q($0) * kv(t, 0, $0) }.reduce(0, +) / Double(dh).squareRoot() }
                    let m = scores.max() ?? 0
                    scores = scores.map { Foundation.exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for j in 0..<dh {
                        let expected = (0..<keyLengths[b]).map { scores[$0] / total * kv($0, 1, j) }.reduce(0, +)
                        XCTAssertEqual(Double(out.data[(b * queryLength + i) * width + h * dh + j]), expected, accuracy: 1e-5)
                    }
                }
            }
        }
    }

    /// With the keys taken from the queries' own states it is the fused self-attention kernel.
    func testCrossAttentionOverOwnStatesIsSelfAttention() throws {
        var seed: UInt64 = 5
        let (batch, length, width, heads) = (2, 5, 8, 2)
        let qkv = try Tensor(shape: [batch * length, 3 * width], data: random(batch * length * 3 * width, seed: &seed))
        let mask = MultiHeadAttention.additiveMask(lengths: [5, 3], paddedLength: length)
        let fused = try MultiHeadAttention.selfAttention(qkv: qkv, batch: batch, length: length, heads: heads, additiveMask: mask)
        var query: [Float] = [], keyValue: [Float] = []
        for row in 0..<(batch * length) {
            let r = row * 3 * width
            query += qkv.data[r..<(r + width)]
            keyValue += qkv.data[(r + width)..<(r + 3 * width)]
        }
        let split = try MultiHeadAttention.crossAttention(
            query: Tensor(shape: [batch * length, width], data: query), keyValue: Tensor(shape: [batch * length, 2 * width], data: keyValue),
            batch: batch, queryLength: length, keyLength: length, heads: heads, additiveMask: mask)
        XCTAssertLessThan(maxAbsDifference(fused.data, split.data), 1e-6)
    }

    func testCrossAttentionRejectsMismatchedShapes() throws {
        let query = Tensor(zeros: [4, 8]), keyValue = Tensor(zeros: [6, 16])
        let mask = Tensor(zeros: [2, 3])
        XCTAssertNoThrow(try MultiHeadAttention.crossAttention(query: query, keyValue: keyValue, batch: 2, queryLength: 2,
                                                               keyLength: 3, heads: 2, additiveMask: mask))
        XCTAssertThrowsError(try MultiHeadAttention.crossAttention(query: query, keyValue: Tensor(zeros: [6, 12]), batch: 2,
                                                                   queryLength: 2, keyLength: 3, heads: 2, additiveMask: mask))
        XCTAssertThrowsError(try MultiHeadAttention.crossAttention(query: query, keyValue: keyValue, batch: 2, queryLength: 2,
                                                                   keyLength: 3, heads: 3, additiveMask: mask))
        XCTAssertThrowsError(try MultiHeadAttention.crossAttention(query: query, keyValue: keyValue, batch: 2, queryLength: 2,
                                                                   keyLength: 3, heads: 2, additiveMask: Tensor(zeros: [2, 2])))
    }

    func testPostBlocksRoundTrip() throws {
        let x = try Tensor(shape: [3 * 2, 2], data: (0..<12).map(Float.init))  // 3 posts of 2 rows
        let part = x.postBlocks([2, 0], rowsPerPost: 2)
        XCTAssertEqual(part.data, [8, 9, 10, 11, 0, 1, 2, 3])
        var y = Tensor(zeros: [6, 2])
        try y.setPostBlocks([2, 0], rowsPerPost: 2, from: part)
        XCTAssertEqual(y.data, [0, 1, 2, 3, 0, 0, 0, 0, 8, 9, 10, 11])
        XCTAssertThrowsError(try y.setPostBlocks([3], rowsPerPost: 2, from: x.postBlocks([0], rowsPerPost: 2)))
    }
}
