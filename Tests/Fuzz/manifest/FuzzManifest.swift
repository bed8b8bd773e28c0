// libFuzzer target: the bundle manifest parser (Sources/Model/Bundle/{BundleManifest,JSONValue}.swift
// with Sources/Model/Errors/ModelLoadError.swift; built by scripts/fuzz.sh).
//
// Besides "no crash", it checks that a manifest that loads names no path that could leave the
// bundle folder, and that it encodes and decodes back to itself (the manifest is Codable, and
// tools write it the same way).

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let manifest: BundleManifest
    do {
        manifest = try BundleManifest.decode(bytes, path: "fuzz/manifest.json")
    } catch {
        check(!error.description.isEmpty, "an empty error message")
        return 0
    }
    for (field, path) in manifest.namedPaths {
        check(BundleManifest.escapeProblem(in: path) == nil, "\(field) '\(path)' loaded but may escape the bundle")
    }
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    guard let encoded = try? encoder.encode(manifest) else { fail("a loaded manifest does not encode") }
    do {
        let again = try BundleManifest.decode(encoded, path: "fuzz/again.json")
        check(again == manifest, "the manifest changes in an encode/decode round trip: \(String(decoding: encoded, as: UTF8.self))")
    } catch {
        fail("the re-encoded manifest does not load: \(error)\n\(String(decoding: encoded, as: UTF8.self))")
    }
    return 0
}

private func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fail(message()) }
}

private func fail(_ message: String) -> Never {
    fputs("fuzz_manifest: \(message)\n", stderr)
    abort()
}
