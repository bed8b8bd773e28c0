// libFuzzer target: the input-record path (UTF-8 check, JSON scanner, field validation, base64).
// Built by scripts/fuzz.sh together with Sources/Daemon/Records/{JSONScanner,InputRecord,Base64}.swift
// and a `Model` module made of Sources/Model/Classifier.swift alone (for `Post`).
//
// Besides "no crash, no ASan report", it checks what the output path relies on: a record that
// decodes has a non-empty id and some content, and the raw member ranges it keeps splice back
// into a valid JSON object with the same keys (output records are built exactly that way).

import Model

#if canImport(Glibc)
import Glibc
#endif

/// Small limits so that the image-size checks are reached with small inputs too.
private let limits = InputLimits(maxMessageBytes: 1 << 20, maxImageBytes: 4096, keepImage: false)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecords(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for keepImage in [false, true] {
        var l = limits
        l.keepImage = keepImage
        guard case let .success(record) = InputRecordDecoder.decode(bytes, limits: l) else { continue }
        check(!record.post.id.isEmpty, "decoded a record with an empty id")
        check(record.post.text != nil || record.post.imageJPEG != nil, "decoded a record with neither text nor image")
        check((record.post.imageJPEG?.count ?? 0) <= l.maxImageBytes, "image over the limit")
        // Splice the kept members as the output writer does, and scan the result again.
        var spliced: [UInt8] = [UInt8(ascii: "{")]
        for (i, range) in record.keptMembers.enumerated() {
            check(range.lowerBound >= 0 && range.upperBound <= bytes.count, "member range \(range) outside the record")
            check(bytes[range.lowerBound] == UInt8(ascii: "\""), "member range \(range) does not start at a key")
            if i > 0 { spliced.append(UInt8(ascii: ",")) }
            spliced.append(contentsOf: bytes[range])
        }
        spliced.append(UInt8(ascii: "}"))
        let original = bytes.withUnsafeBufferPointer { try? JSONScanner.topLevelMembers(of: $0) }
        let again = spliced.withUnsafeBufferPointer { try? JSONScanner.topLevelMembers(of: $0) }
        guard let original, let again else { fail("kept members do not splice into a JSON object") }
        let keptKeys = original.map(\.key).filter { keepImage || $0 != "image" }
        check(again.map(\.key) == keptKeys, "spliced keys \(again.map(\.key)) differ from \(keptKeys)")
    }
    return 0
}

private func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fail(message()) }
}

private func fail(_ message: String) -> Never {
    fputs("fuzz_records: \(message)\n", stderr)
    abort()
}
