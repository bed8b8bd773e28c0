import Foundation
import XCTest
@testable import Model

/// Paths in a bundle's manifest stay inside the bundle: `..`, absolute paths and symbolic links
/// that lead elsewhere are refused at load, with the manifest field and the path in the message.
final class BundlePathConfinementTests: XCTestCase {
    private func loadError(_ bundle: BrokenBundle, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let classifier = try ModelBundle.load(folder: bundle.folder)
            XCTFail("loaded a bundle with heads \(classifier.heads.map(\.task))", file: file, line: line)
            return ""
        } catch {
            return error.description
        }
    }

    func testDotDotInAComponentPath() throws {
        let bundle = try BrokenBundle(self)
        // A real folder two levels up, so only the spelling can be what is refused.
        try FileManager.default.copyItem(at: bundle.url("text-encoder"), to: bundle.folder.deletingLastPathComponent().appendingPathComponent("outside"))
        try bundle.editManifest { manifest in
            var encoder = manifest["text_encoder"] as? [String: Any] ?? [:]
            encoder["path"] = "text-encoder/../../outside"
            manifest["text_encoder"] = encoder
        }
        let message = loadError(bundle)
        XCTAssertTrue(message.contains("text_encoder.path 'text-encoder/../../outside'") && message.contains("'..'")
                      && message.contains("manifest.json"), message)
    }

    func testAbsoluteWeightsPath() throws {
        let bundle = try BrokenBundle(self)
        let absolute = bundle.url("heads/sarcasm.safetensors").path
        try bundle.editHead(0) { $0["weights"] = absolute }
        let message = loadError(bundle)
        XCTAssertTrue(message.contains("heads[0].weights '\(absolute)'") && message.contains("absolute"), message)
    }

    /// A weights file that is a link to a file outside the bundle and its models directory.
    func testSymbolicLinkOutOfTheBundle() throws {
        let bundle = try BrokenBundle(self)
        let outside = BundleFixture.folder.appendingPathComponent("heads/correlation.safetensors")
        try FileManager.default.removeItem(at: bundle.url("heads/correlation.safetensors"))
        try FileManager.default.createSymbolicLink(at: bundle.url("heads/correlation.safetensors"), withDestinationURL: outside)
        let message = loadError(bundle)
        XCTAssertTrue(message.contains("heads[1].weights 'heads/correlation.safetensors'") && message.contains("symbolic link")
                      && message.contains(outside.resolvingSymlinksInPath().path), message)
    }

    /// A file inside a component folder that links out (the encoder would open it).
    func testSymbolicLinkInsideAComponentFolder() throws {
        let bundle = try BrokenBundle(self)
        let vocab = bundle.url("text-encoder/vocab.txt")
        try FileManager.default.removeItem(at: vocab)
        try FileManager.default.createSymbolicLink(at: vocab, withDestinationURL: TestPaths.tinyBert.appendingPathComponent("vocab.txt"))
        let message = loadError(bundle)
        XCTAssertTrue(message.contains("text_encoder.path 'text-encoder' holds") && message.contains("vocab.txt")
                      && message.contains("symbolic link"), message)
    }

    /// How scripts/setup-models.sh builds models/default: links to sibling model folders load.
    func testLinksToSiblingFoldersLoad() throws {
        let bundle = try BrokenBundle(self)
        let sibling = bundle.folder.deletingLastPathComponent().appendingPathComponent("tiny-text-encoder")
        try FileManager.default.moveItem(at: bundle.url("text-encoder"), to: sibling)
        try FileManager.default.createSymbolicLink(atPath: bundle.url("text-encoder").path, withDestinationPath: "../tiny-text-encoder")
        XCTAssertEqual(try ModelBundle.load(folder: bundle.folder).heads.count, 2)
    }

    func testEscapeProblemBySpelling() {
        XCTAssertNil(BundleManifest.escapeProblem(in: "heads/a.safetensors"))
        XCTAssertNil(BundleManifest.escapeProblem(in: "./text-encoder"))
        XCTAssertNil(BundleManifest.escapeProblem(in: "a..b/..c"))
        XCTAssertEqual(BundleManifest.escapeProblem(in: ""), "it is empty")
        XCTAssertEqual(BundleManifest.escapeProblem(in: "/etc/passwd"), "it is absolute")
        XCTAssertEqual(BundleManifest.escapeProblem(in: ".."), "it has a '..' component")
        XCTAssertEqual(BundleManifest.escapeProblem(in: "heads//../../x"), "it has a '..' component")
        XCTAssertEqual(BundleManifest.escapeProblem(in: "a\u{0}b"), "it contains a NUL byte")
    }
}
