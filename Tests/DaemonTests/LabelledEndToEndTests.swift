import Foundation
import TestSupport
import Kafka
import Testing

/// A real model bundle in the real daemon through a real broker: every post comes out labelled
/// exactly as `postclassd classify` labels the same file, and a post whose image cannot be
/// decoded is dead-lettered without disturbing the rest of its batch.
///
/// The bundle is the small random-weight one the model golden tests use (the default bundle's
/// networks are too slow in a debug build for 200 posts; the demo runs that one in CI).
@Suite(.serialized) struct LabelledEndToEndTests {
    static let bundle = repositoryRoot.appendingPathComponent("Tests/ModelTests/Fixtures/tiny-bundle").path
    static let texts = ["the cat sat on the mat", "what a great monday, love it", "launch day for the rocket",
                        "coffee first, questions later", "nothing to see here", "", "the quick brown fox jumps over the lazy dog again and again and again",
                        "zxqv unknownword blorp"]

    /// 200 posts: text-only, image-only and both, with every fixture JPEG, plus one broken image.
    static func posts() throws -> (lines: [[UInt8]], brokenID: String) {
        let folder = repositoryRoot.appendingPathComponent("Tests/ModelTests/Fixtures/images")
        let jpegs = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".jpg") }.sorted()
            .map { try Data(contentsOf: folder.appendingPathComponent($0)).base64EncodedString() }
        var lines: [[UInt8]] = []
        for i in 0..<200 {
            var object: [String: Any] = ["id": "post-\(i)"]
            if i % 3 != 1 { object["text"] = texts[i % texts.count] }
            if i % 3 != 0 { object["image"] = jpegs[i % jpegs.count] }
            if i == 77 { object["image"] = Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]).base64EncodedString() }  // a JPEG that ends at once
            lines.append(Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
        }
        return (lines, "post-77")
    }

    /// Labels by id from output records: task -> (label, probabilities).
    static func labels(_ value: [UInt8]) -> (id: String, labels: [String: String], probabilities: [String: [String: Double]])? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any],
              let id = object["id"] as? String, let labels = object["labels"] as? [String: [String: Any]] else { return nil }
        var names: [String: String] = [:], probabilities: [String: [String: Double]] = [:]
        for (task, label) in labels {
            names[task] = label["label"] as? String
            probabilities[task] = (label["probabilities"] as? [String: Any])?.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
        return (id, names, probabilities)
    }

    @Test("200 posts through the daemon: labels equal postclassd classify's; the undecodable image is dead-lettered")
    func daemonMatchesClassify() throws {
        guard FileManager.default.fileExists(atPath: Self.bundle + "/manifest.json") else {
            throw TestFailure("missing \(Self.bundle); regenerate it with tools/golden/make_tiny_bundle.py")
        }
        let (lines, brokenID) = try Self.posts()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("posts-\(UUID()).jsonl")
        try Data(lines.flatMap { $0 + [0x0A] }).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let classify = try runProgram(Binaries.postclassd.path, ["classify", file.path, "--model", Self.bundle, "--batch-size", "8"],
                                      includeStandardError: false, timeout: .seconds(300))
        #expect(classify.status == 0, "classify failed: \(classify.output.suffix(2000))")
        var expected: [String: (labels: [String: String], probabilities: [String: [String: Double]])] = [:]
        for line in classify.output.split(separator: "\n") {
            if let record = Self.labels(Array(line.utf8)) { expected[record.id] = (record.labels, record.probabilities) }
        }
        #expect(expected.count == 199, "classify labelled \(expected.count) of 199 decodable posts")
        #expect(expected[brokenID] == nil)

        let cluster = try DaemonTestCluster.standard()
        defer { withExtendedLifetime(cluster) {} }
        try cluster.produce(lines.enumerated().map { ("k\($0.offset)", $0.element) }, topic: "posts")
        let daemon = try DaemonProcess(brokers: cluster.bootstrap, arguments: ["--model", Self.bundle, "--batch-size", "8", "--workers", "2"])
        let output = try cluster.readAll("labels", expected: 199, timeout: .seconds(300))
        let dlq = try cluster.readAll("posts.dlq", expected: 1)
        #expect(daemon.stop() == 0, "daemon log:\n\(daemon.log.suffix(2000))")

        #expect(output.count == 199)
        var compared = 0
        for message in output {
            guard let record = Self.labels(message.value ?? []), let want = expected[record.id] else {
                Issue.record("unexpected output record \(String(decoding: message.value ?? [], as: UTF8.self).prefix(200))")
                continue
            }
            #expect(record.labels == want.labels, "post \(record.id): daemon \(record.labels), classify \(want.labels)")
            for (task, probabilities) in want.probabilities {
                for (label, p) in probabilities {
                    // Different batch cuts change summation order in sgemm, nothing more.
                    #expect(abs((record.probabilities[task]?[label] ?? -1) - p) < 1e-5, "post \(record.id) \(task)/\(label)")
                }
            }
            compared += 1
        }
        #expect(compared == 199)
        #expect(dlq.count == 1)
        if let dead = dlq.first {
            #expect(header("error.code", of: dead) == "undecodable_image")
            #expect(header("error.message", of: dead)?.contains("cannot be decoded") == true)
            #expect(Posts.id(of: dead.value) == brokenID, "the dead-letter record carries the original post")
        }
    }
}
