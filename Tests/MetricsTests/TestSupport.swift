import Foundation
import XCTest
@_exported import TestSupport


/// A fresh temporary directory, removed when the test ends.
func temporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("metrics-tests-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    return directory
}
