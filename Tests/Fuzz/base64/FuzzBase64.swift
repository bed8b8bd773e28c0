// libFuzzer target: Sources/Daemon/Records/Base64.swift on its own (built by scripts/fuzz.sh).
//
// Checks, beyond "no crash": whatever decodes re-encodes to text of the same length (line breaks
// aside) that decodes to the same bytes; and the input taken as bytes survives a round trip.

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBase64(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    if let decoded = Base64.decode(input) {
        let stripped = input.filter { $0 != 0x0A && $0 != 0x0D }
        let encoded = encode(decoded)
        check(encoded.count == stripped.count, "decoded \(decoded.count) bytes from \(stripped.count) characters, which re-encode to \(encoded.count)")
        check(encoded.withUnsafeBufferPointer(Base64.decode) == decoded, "re-encoded text decodes differently")
    }
    let roundTrip = encode(Array(input)).withUnsafeBufferPointer(Base64.decode)
    check(roundTrip.map { $0.elementsEqual(input) } ?? false, "\(size) bytes do not survive encode + decode")
    return 0
}

/// A plain RFC 4648 encoder (the daemon only decodes).
private func encode(_ bytes: [UInt8]) -> [UInt8] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let n = min(3, bytes.count - i)
        let b0 = UInt32(bytes[i]), b1 = n > 1 ? UInt32(bytes[i + 1]) : 0, b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
        let q = b0 << 16 | b1 << 8 | b2
        out.append(alphabet[Int(q >> 18 & 63)])
        out.append(alphabet[Int(q >> 12 & 63)])
        out.append(n > 1 ? alphabet[Int(q >> 6 & 63)] : UInt8(ascii: "="))
        out.append(n > 2 ? alphabet[Int(q & 63)] : UInt8(ascii: "="))
        i += 3
    }
    return out
}

private func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fputs("fuzz_base64: \(message())\n", stderr)
        abort()
    }
}
