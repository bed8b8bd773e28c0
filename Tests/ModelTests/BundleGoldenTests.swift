import Foundation
import XCTest
@testable import Model

/// The tiny bundle (tools/golden/make_tiny_bundle.py) end to end: JSON-lines posts in, labels and
/// probabilities out, against tools/reference/bundle_reference.py.
///
/// Tolerance: 1e-4 on every probability, posts with and without an image alike. The engine
/// computes in float32 against the float64 reference (a 2-layer BERT and ViT, a 2-layer CLFA head,
/// a BiGRU); measured at most 3.3e-7 for text-only posts and 4.8e-7 for posts with an image, for
/// every batch size below. The reference decodes JPEGs with Pillow 13.0.0's bundled libjpeg-turbo
/// and the engine with the system one (Debian's libjpeg62-turbo 2.1.5): both use the accurate
/// integer IDCT and fancy upsampling, and they decode these pictures (DCT-scaled ones included)
/// identically, so image posts need no looser bound. Should another libjpeg differ by a level
/// somewhere, the labels still hold: the generator keeps every decision at least 0.02 from
/// flipping, and labels are compared exactly.
final class BundleGoldenTests: XCTestCase {
    static let tolerance: Float = 1e-4

    func testLoadsTheFixture() throws {
        let classifier = try ModelBundle.load(folder: BundleFixture.folder)
        XCTAssertEqual(classifier.identity.name, "tiny-bundle")
        XCTAssertEqual(classifier.heads.map(\.task), ["sarcasm", "correlation"])
        XCTAssertEqual(classifier.heads.map(\.headName), ["clfa", "ananet"])
        XCTAssertEqual(classifier.maxTokens, 24)
        XCTAssertEqual(classifier.image?.regionWidth, 32)
    }

    /// All posts as one batch (mixed lengths, images and failures in one padded batch), then in
    /// batches of 3 (other paddings, batches without images), then one at a time; each with the
    /// images decoded on GCD's width, on one thread and on three.
    func testLabelsAndProbabilitiesMatchTheReference() throws {
        let loaded = try ModelBundle.load(folder: BundleFixture.folder)
        let posts = try BundleFixture.posts()
        let expected = try BundleFixture.expected()
        XCTAssertEqual(posts.count, expected.count)
        XCTAssertTrue(expected.contains { $0.error != nil } && posts.contains { $0.imageJPEG == nil })
        for (decodeThreads, batchSize) in [0, 1, 3].flatMap({ t in [posts.count, 3, 1].map { (t, $0) } }) {
            var classifier = loaded
            classifier.decodeThreads = decodeThreads
            var worst = (text: Float(0), image: Float(0))
            for start in stride(from: 0, to: posts.count, by: batchSize) {
                let range = start..<min(start + batchSize, posts.count)
                var timings = StageTimings()
                let results = classifier.classify(Array(posts[range]), timings: &timings)
                XCTAssertEqual(results.count, range.count)
                for (post, result) in zip(posts[range], results) {
                    guard let want = expected.first(where: { $0.id == post.id }) else {
                        XCTFail("\(post.id) is not in expected.jsonl"); continue
                    }
                    let difference = try compare(post, result, want)
                    if post.imageJPEG == nil { worst.text = max(worst.text, difference) } else { worst.image = max(worst.image, difference) }
                }
            }
            XCTAssertLessThan(worst.text, Self.tolerance, "batch size \(batchSize), decode threads \(decodeThreads), posts without an image")
            XCTAssertLessThan(worst.image, Self.tolerance, "batch size \(batchSize), decode threads \(decodeThreads), posts with an image")
            print("tiny bundle, batch size \(batchSize), decode threads \(decodeThreads): max |p - reference| text-only \(worst.text), with image \(worst.image)")
        }
    }

    /// Checks one post's result and returns its largest probability difference.
    private func compare(_ post: Post, _ result: Result<Prediction, PostFailure>,
                         _ want: BundleFixture.Expected) throws -> Float {
        switch result {
        case let .failure(failure):
            XCTAssertEqual(failure.code, want.error, "\(post.id): \(failure.message)")
            return 0
        case let .success(prediction):
            guard let labels = want.labels else {
                XCTFail("\(post.id) was labelled but the reference says \(want.error ?? "?")"); return 0
            }
            XCTAssertEqual(prediction.labels.map(\.task), ["sarcasm", "correlation"], post.id)
            var worst: Float = 0
            for label in prediction.labels {
                guard let reference = labels[label.task] else { XCTFail("\(post.id): no \(label.task)"); continue }
                XCTAssertEqual(label.label, reference.label, "\(post.id) \(label.task)")
                XCTAssertEqual(label.probabilities.map(\.label).sorted(), reference.probabilities.keys.sorted(), "\(post.id) \(label.task)")
                for (name, p) in label.probabilities {
                    worst = max(worst, abs(p - Float(reference.probabilities[name] ?? .nan)))
                }
            }
            return worst
        }
    }

    func testTheBinaryLabelsTheFileAsTheReference() throws {
        let binary = TestPaths.productsDirectory.appendingPathComponent("postclassd")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(binary.path) is not built; run `swift build` (swift test builds it too)")
            return
        }
        let process = Process()
        process.executableURL = binary
        // fp32, as the reference computes (auto may take bf16 on this CPU).
        process.arguments = ["classify", BundleFixture.folder.appendingPathComponent("posts.jsonl").path,
                             "--model", BundleFixture.folder.path, "--batch-size", "4", "--precision", "fp32"]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, err)

        struct Line: Decodable {
            struct Label: Decodable { let label: String; let probabilities: [String: Float] }
            struct Failure: Decodable { let code: String }
            let id: String?
            let labels: [String: Label]?
            let error: Failure?
        }
        let lines = try out.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Line.self, from: Data($0)) }
        let expected = try BundleFixture.expected()
        XCTAssertEqual(lines.map(\.id), expected.map(\.id))
        for (line, want) in zip(lines, expected) {
            let id = want.id
            XCTAssertEqual(line.error?.code, want.error, id)
            XCTAssertEqual(line.labels?.mapValues(\.label), want.labels?.mapValues(\.label), id)
            for (task, label) in line.labels ?? [:] {
                for (name, p) in label.probabilities {
                    let reference = Float(want.labels?[task]?.probabilities[name] ?? .nan)
                    XCTAssertEqual(p, reference, accuracy: Self.tolerance, "\(id) \(task) \(name)")
                }
            }
        }
        XCTAssertTrue(err.contains("14 posts, 13 labelled, 1 not"), err)
    }
}

/// The files of Tests/ModelTests/Fixtures/tiny-bundle.
enum BundleFixture {
    static let folder = TestPaths.fixtures.appendingPathComponent("tiny-bundle")

    /// A line of expected.jsonl.
    struct Expected: Decodable {
        struct Label: Decodable {
            let label: String
            /// Empty for `no_image`.
            let probabilities: [String: Double]
        }
        let id: String
        let labels: [String: Label]?
        /// The failure code, for a post the model cannot label.
        let error: String?
    }

    /// posts.jsonl, decoded as the daemon's input schema.
    static func posts() throws -> [Post] {
        struct Line: Decodable { let id: String; let text: String?; let image: String? }
        return try lines("posts.jsonl").map { data in
            let line = try JSONDecoder().decode(Line.self, from: data)
            var image: [UInt8]?
            if let base64 = line.image {
                guard let bytes = Data(base64Encoded: base64) else { throw CocoaError(.coderInvalidValue) }
                image = [UInt8](bytes)
            }
            return Post(id: line.id, text: line.text, imageJPEG: image)
        }
    }

    static func expected() throws -> [Expected] {
        try lines("expected.jsonl").map { try JSONDecoder().decode(Expected.self, from: $0) }
    }

    private static func lines(_ name: String) throws -> [Data] {
        try Data(contentsOf: folder.appendingPathComponent(name)).split(separator: UInt8(ascii: "\n")).map { Data($0) }
    }
}
