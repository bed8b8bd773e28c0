/// A strict, allocation-light JSON reader for one top-level object.
///
/// postclassd needs three fields of each input record (`id`, `text`, `image`) and must keep every
/// other field exactly as it came. So instead of building a tree, the scanner validates the whole
/// document (RFC 8259 syntax, UTF-8 already checked by the caller) and returns each top-level
/// member as its decoded key plus the byte range of its raw value. Output records are then spliced
/// from those ranges, byte for byte.
struct JSONScanner {
    /// A top-level member: its key and where its raw value lies in the input.
    struct Member {
        let key: String
        let valueRange: Range<Int>
        /// The first byte of the value, which tells its type (`"`, `{`, `[`, `t`, `f`, `n`, digit).
        let valueStart: UInt8
    }

    struct SyntaxError: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "\(reason) at byte \(offset)" }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    /// Nesting deeper than this is refused (a stack-exhaustion guard for hostile input).
    private let maxDepth = 64

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Validates `bytes` as one JSON object and returns its members in order.
    static func topLevelMembers(of bytes: UnsafeBufferPointer<UInt8>) throws(SyntaxError) -> [Member] {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else {
            throw SyntaxError(offset: scanner.index, reason: "the record is not a JSON object")
        }
        let members = try scanner.object(depth: 0, collect: true)
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else {
            throw SyntaxError(offset: scanner.index, reason: "unexpected data after the JSON object")
        }
        return members
    }

    /// Decodes a JSON string literal (the bytes of `range` include the quotes).
    static func decodeString(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String? {
        var scanner = JSONScanner(bytes)
        scanner.index = range.lowerBound
        return try? scanner.string()
    }

    // MARK: - Grammar

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
        guard peek() == byte else { throw SyntaxError(offset: index, reason: "expected \(what)") }
        index += 1
    }

    private mutating func object(depth: Int, collect: Bool) throws(SyntaxError) -> [Member] {
        guard depth < maxDepth else { throw SyntaxError(offset: index, reason: "nesting deeper than \(maxDepth) levels") }
        try expect(UInt8(ascii: "{"), "'{'")
        var members: [Member] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return members }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw SyntaxError(offset: index, reason: "expected a member name in quotes") }
            let key = try string()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after a member name")
            skipWhitespace()
            let start = index
            let first = peek() ?? 0
            try value(depth: depth + 1)
            if collect { members.append(Member(key: key, valueRange: start..<index, valueStart: first)) }
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}'")
            return members
        }
    }

    private mutating func array(depth: Int) throws(SyntaxError) {
        guard depth < maxDepth else { throw SyntaxError(offset: index, reason: "nesting deeper than \(maxDepth) levels") }
        try expect(UInt8(ascii: "["), "'['")
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return }
        while true {
            skipWhitespace()
            try value(depth: depth + 1)
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']'")
            return
        }
    }

    private mutating func value(depth: Int) throws(SyntaxError) {
        switch peek() ?? 0 {
        case UInt8(ascii: "{"): _ = try object(depth: depth, collect: false)
        case UInt8(ascii: "["): try array(depth: depth)
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw SyntaxError(offset: index, reason: "expected a JSON value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(SyntaxError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw SyntaxError(offset: index, reason: "truncated literal") }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] {
            throw SyntaxError(offset: index, reason: "invalid literal")
        }
        index += count
    }

    private mutating func digits() -> Int {
        let start = index
        while let b = peek(), b >= 0x30, b <= 0x39 { index += 1 }
        return index - start
    }

    private mutating func number() throws(SyntaxError) {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw SyntaxError(offset: start, reason: "invalid number")
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw SyntaxError(offset: start, reason: "invalid number") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw SyntaxError(offset: start, reason: "invalid number") }
        }
    }

    /// Validates a string without decoding it.
    /// The index of the first byte at or after `from` that ends a plain run of string bytes: a
    /// quote, a backslash or a control character (or `bytes.count`). Eight bytes at a time while
    /// none of them is one of those (SWAR: a byte lane is flagged when `lane - k` borrows into its
    /// high bit while the lane's own high bit is clear, i.e. lane < k, or lane == 0 after an xor).
    /// Post texts are mostly such runs; this took the scanner from two thirds of a post's decode
    /// to a small share.
    private func plainRunEnd(from start: Int) -> Int {
        let n = bytes.count
        var i = start
        guard let base = UnsafeRawPointer(bytes.baseAddress) else { return i }
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        while i + 8 <= n {
            let x = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let quote = x ^ (ones &* 0x22), backslash = x ^ (ones &* 0x5C)
            let flagged = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((x &- ones &* 0x20) & ~x)
            if flagged & highs != 0 { break }
            i += 8
        }
        return i
    }

    private mutating func skipString() throws(SyntaxError) {
        let start = index
        index += 1
        while index < bytes.count {
            index = plainRunEnd(from: index)
            guard index < bytes.count else { break }
            let b = bytes[index]
            if b == UInt8(ascii: "\"") { index += 1; return }
            if b < 0x20 { throw SyntaxError(offset: index, reason: "control character in a string") }
            if b == UInt8(ascii: "\\") {
                index += 1
                guard let e = peek() else { break }
                if e == UInt8(ascii: "u") {
                    index += 1
                    _ = try escapedCodePoint()
                    continue
                }
                guard [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                       UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t")].contains(e) else {
                    throw SyntaxError(offset: index, reason: "invalid escape")
                }
            }
            index += 1
        }
        throw SyntaxError(offset: start, reason: "unterminated string")
    }

    /// Decodes a string, including escapes and surrogate pairs. The common case, a string with
    /// no escapes, is one copy of its (already validated) UTF-8 bytes.
    private mutating func string() throws(SyntaxError) -> String {
        let start = index
        index += 1
        var utf8: [UInt8] = []
        var runStart = index
        while index < bytes.count {
            index = plainRunEnd(from: index)
            guard index < bytes.count else { break }
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let run = UnsafeBufferPointer(rebasing: bytes[runStart..<index])
                index += 1
                if utf8.isEmpty { return String(decoding: run, as: UTF8.self) }
                utf8.append(contentsOf: run)
                return String(decoding: utf8, as: UTF8.self)
            }
            if b < 0x20 { throw SyntaxError(offset: index, reason: "control character in a string") }
            if b != UInt8(ascii: "\\") { index += 1; continue }
            utf8.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            index += 1
            guard let e = peek() else { break }
            index += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                let code = try escapedCodePoint()
                guard let scalar = Unicode.Scalar(code) else { throw SyntaxError(offset: index, reason: "invalid \\u escape") }
                if let encoded = UTF8.encode(scalar) { utf8.append(contentsOf: encoded) }
            default:
                throw SyntaxError(offset: index - 1, reason: "invalid escape")
            }
            runStart = index
        }
        throw SyntaxError(offset: start, reason: "unterminated string")
    }

    /// Reads the code point of a `\\u` escape (index after the `u`), joining a high surrogate
    /// with the escaped low surrogate that must follow. A lone surrogate is refused even in
    /// strings that are only skipped: they are copied to the output byte for byte, and strict
    /// parsers (RFC 8259 §8.2) reject text that encodes half a character.
    private mutating func escapedCodePoint() throws(SyntaxError) -> UInt32 {
        let start = index - 2
        let code = try hex4()
        if (0xD800...0xDBFF).contains(code) {
            guard peek() == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                throw SyntaxError(offset: start, reason: "unpaired surrogate in \\u escape")
            }
            index += 2
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw SyntaxError(offset: start, reason: "unpaired surrogate in \\u escape") }
            return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        }
        if (0xDC00...0xDFFF).contains(code) { throw SyntaxError(offset: start, reason: "unpaired surrogate in \\u escape") }
        return code
    }

    private mutating func hex4() throws(SyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw SyntaxError(offset: index, reason: "invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            guard isHex(b) else { throw SyntaxError(offset: index, reason: "invalid \\u escape") }
            value = value << 4 | UInt32(b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10)
            index += 1
        }
        return value
    }
}

private func isHex(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
}

/// Writes JSON text into a byte buffer.
struct JSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func raw<S: Sequence>(_ other: S) where S.Element == UInt8 { bytes.append(contentsOf: other) }

    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func number(_ value: Int64) { raw(String(value).utf8) }

    /// A probability or score: finite, with enough digits to round-trip Float32.
    mutating func number(_ value: Float) {
        guard value.isFinite else { raw("null"); return }
        raw(value.description.utf8)
    }
}
