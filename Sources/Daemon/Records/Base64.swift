/// Strict standard base64 (RFC 4648, `+` and `/`, `=` padding), decoded straight from a record's
/// bytes: one pass that validates and decodes, with line breaks (CR, LF) skipped anywhere.
///
/// Why not Foundation: `Data(base64Encoded:)` wants a `String` or `Data` (one more copy of a
/// ~300 KB image field), and without `.ignoreUnknownCharacters` it refuses line breaks, while with
/// it it accepts any garbage; the separate validation pass this replaced was 4.5% of an image
/// post's CPU (profiled with `postclassd classify`).
enum Base64 {
    /// The sextet of each byte; `pad` for `=`, `skip` for CR and LF, `bad` for everything else.
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: bad, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            t[Int(c)] = UInt8(i)
        }
        t[Int(UInt8(ascii: "="))] = pad
        t[0x0A] = skip
        t[0x0D] = skip
        return t
    }()
    private static let pad: UInt8 = 64, skip: UInt8 = 65, bad: UInt8 = 255

    /// The decoded bytes, or nil when `text` is not base64: a byte outside the alphabet, data
    /// after the padding, more than two `=`, or a length (line breaks aside) that is not a
    /// multiple of 4.
    static func decode(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        table.withUnsafeBufferPointer { table -> [UInt8]? in
            var out = [UInt8]()
            out.reserveCapacity(text.count / 4 * 3)
            var quantum: UInt32 = 0, filled = 0, padding = 0
            for byte in text {
                let sextet = table[Int(byte)]
                if sextet < pad {
                    guard padding == 0 else { return nil }
                    quantum = quantum << 6 | UInt32(sextet)
                    filled += 1
                    if filled == 4 {
                        out.append(UInt8(truncatingIfNeeded: quantum >> 16))
                        out.append(UInt8(truncatingIfNeeded: quantum >> 8))
                        out.append(UInt8(truncatingIfNeeded: quantum))
                        quantum = 0
                        filled = 0
                    }
                } else if sextet == pad {
                    padding += 1
                    // "xx==" or "xxx=": the padding completes the last quantum of 2 or 3 sextets.
                    guard padding <= 2, filled + padding <= 4, filled >= 2 else { return nil }
                } else if sextet != skip {
                    return nil
                }
            }
            if padding > 0 {
                guard filled + padding == 4 else { return nil }
                quantum <<= 6 * UInt32(padding)
                out.append(UInt8(truncatingIfNeeded: quantum >> 16))
                if padding == 1 { out.append(UInt8(truncatingIfNeeded: quantum >> 8)) }
            } else if filled != 0 {
                return nil
            }
            return out
        }
    }
}
