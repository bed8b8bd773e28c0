import Foundation
import Model

/// Why an input record goes to the dead-letter topic instead of being classified. The code is
/// the `error.code` header: short, stable, and documented in the README.
struct DeadLetterReason: Error, Sendable, Equatable {
    let code: String
    let message: String

    static func emptyMessage() -> Self {
        .init(code: "empty_message", message: "the record has no value; producers must send a JSON post")
    }
    static func messageTooLarge(_ size: Int, limit: Int) -> Self {
        .init(code: "message_too_large", message: "the record is \(size) bytes, over the limit of \(limit) (setting max-message-bytes)")
    }
    static func invalidUTF8(at offset: Int) -> Self {
        .init(code: "invalid_utf8", message: "the record is not valid UTF-8 (first bad byte at offset \(offset)); send JSON text in UTF-8")
    }
    static func malformedJSON(_ detail: String) -> Self {
        .init(code: "malformed_json", message: "the record is not a valid JSON object: \(detail)")
    }
    static func missingField(_ detail: String) -> Self {
        .init(code: "missing_field", message: detail)
    }
    static func invalidField(_ detail: String) -> Self {
        .init(code: "invalid_field", message: detail)
    }
    static func invalidBase64() -> Self {
        .init(code: "invalid_base64", message: "field image is not valid base64; send the JPEG file's bytes base64-encoded (RFC 4648)")
    }
    static func imageTooLarge(_ size: Int, limit: Int) -> Self {
        .init(code: "image_too_large", message: "the image is \(size) bytes, over the limit of \(limit) (setting max-image-bytes)")
    }
}

/// A valid input record: the post to classify, and the byte ranges of the input's members so the
/// output can keep every field exactly as it came.
struct InputRecord: Sendable {
    let post: Post
    /// Top-level members to copy into the output (all but `image`, unless it is kept), as raw
    /// `"key":value` byte ranges of `raw`.
    let keptMembers: [Range<Int>]
    /// Members whose names the output reserves for the daemon's own fields (``reservedNames``), as
    /// raw `"key":value` ranges: the output keeps them inside `input_fields` instead, so no output
    /// object ever has two members of one name and a post cannot forge `labels`, `model` or `source`.
    var shadowedMembers: [Range<Int>] = []

    /// The output's own top-level names. `input_fields` holds the input's members of these names.
    static let reservedNames: Set<String> = ["labels", "model", "source", "input_fields"]
}

/// Limits applied to every input record.
struct InputLimits: Sendable {
    var maxMessageBytes = 10 * 1024 * 1024
    var maxImageBytes = 8 * 1024 * 1024
    var keepImage = false
}

/// Turns a record's value into a post, or says why it cannot be one.
///
/// Schema: a JSON object with `id` (string, required), `text` (string) and `image` (base64 JPEG);
/// at least one of `text` and `image`; any other field is kept and passed through.
enum InputRecordDecoder {
    static func decode(_ value: [UInt8]?, limits: InputLimits) -> Result<InputRecord, DeadLetterReason> {
        guard let value, !value.isEmpty else { return .failure(.emptyMessage()) }
        guard value.count <= limits.maxMessageBytes else {
            return .failure(.messageTooLarge(value.count, limit: limits.maxMessageBytes))
        }
        return value.withUnsafeBufferPointer { bytes in
            if let bad = firstInvalidUTF8(bytes) { return .failure(.invalidUTF8(at: bad)) }
            let members: [JSONScanner.Member]
            do throws(JSONScanner.SyntaxError) {
                members = try JSONScanner.topLevelMembers(of: bytes)
            } catch {
                return .failure(.malformedJSON(error.description))
            }
            return decode(members, bytes, limits: limits)
        }
    }

    private static func decode(_ members: [JSONScanner.Member], _ bytes: UnsafeBufferPointer<UInt8>,
                               limits: InputLimits) -> Result<InputRecord, DeadLetterReason> {
        var id: String?, text: String?, image: [UInt8]?
        var seen = Set<String>()
        var kept: [Range<Int>] = []
        var shadowed: [Range<Int>] = []
        var memberStart = 1  // a member's raw text runs from after the previous separator
        for member in members {
            guard seen.insert(member.key).inserted else {
                return .failure(.malformedJSON("field \(member.key) appears twice"))
            }
            let range = rawMemberRange(member, bytes, from: memberStart)
            memberStart = member.valueRange.upperBound
            switch member.key {
            case "id":
                guard member.valueStart == UInt8(ascii: "\""), let value = JSONScanner.decodeString(bytes, member.valueRange) else {
                    return .failure(.invalidField("field id must be a string"))
                }
                guard !value.isEmpty else { return .failure(.invalidField("field id must not be empty")) }
                id = value
            case "text":
                if member.valueStart == UInt8(ascii: "n") { break }  // null: no text
                guard member.valueStart == UInt8(ascii: "\""), let value = JSONScanner.decodeString(bytes, member.valueRange) else {
                    return .failure(.invalidField("field text must be a string"))
                }
                text = value
            case "image":
                // The image member leaves the output unless keep-image, whatever its value (null too).
                if member.valueStart == UInt8(ascii: "n") {
                    if limits.keepImage { break } else { continue }
                }
                guard member.valueStart == UInt8(ascii: "\""), let decoded = withImageField(bytes, member.valueRange, { encoded in
                    decodeImage(encoded, limits: limits)
                }) else {
                    return .failure(.invalidField("field image must be a base64 string"))
                }
                switch decoded {
                case let .failure(reason): return .failure(reason)
                case let .success(data): if !data.isEmpty { image = data }
                }
                if !limits.keepImage { continue }
            case let key where InputRecord.reservedNames.contains(key):
                shadowed.append(range)
                continue
            default:
                break
            }
            kept.append(range)
        }
        guard let id else { return .failure(.missingField("field id is missing; every post needs a string id")) }
        guard text != nil || image != nil else {
            return .failure(.missingField("post \(id) has neither text nor image; send at least one"))
        }
        return .success(InputRecord(post: Post(id: id, text: text, imageJPEG: image), keptMembers: kept, shadowedMembers: shadowed))
    }

    /// The `"key": value` text of a member, found by walking back from its value to the key's
    /// opening quote (after the previous member's separator).
    private static func rawMemberRange(_ member: JSONScanner.Member, _ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Range<Int> {
        var i = start
        while i < member.valueRange.lowerBound, bytes[i] != UInt8(ascii: "\"") { i += 1 }
        return i..<member.valueRange.upperBound
    }

    /// Runs `body` on the characters of the image field: the raw bytes between the quotes when the
    /// string has no escapes (base64 never needs one), else its decoded text (an encoder may write
    /// `\/` or `\n`). Nil when the string does not decode.
    private static func withImageField<R>(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                                          _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard range.count >= 2 else { return nil }
        let raw = UnsafeBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        guard let start = raw.baseAddress, memchr(start, Int32(UInt8(ascii: "\\")), raw.count) != nil else { return body(raw) }
        guard var text = JSONScanner.decodeString(bytes, range) else { return nil }
        return text.withUTF8 { body($0) }
    }

    /// The JPEG bytes of a base64 image field, within the image size limit.
    private static func decodeImage(_ encoded: UnsafeBufferPointer<UInt8>, limits: InputLimits) -> Result<[UInt8], DeadLetterReason> {
        // Base64 is 4 characters per 3 bytes: refuse before decoding what would be too large.
        guard encoded.count / 4 * 3 <= limits.maxImageBytes + 3 else {
            return .failure(.imageTooLarge(encoded.count / 4 * 3, limit: limits.maxImageBytes))
        }
        guard let data = Base64.decode(encoded) else { return .failure(.invalidBase64()) }
        guard data.count <= limits.maxImageBytes else { return .failure(.imageTooLarge(data.count, limit: limits.maxImageBytes)) }
        return .success(data)
    }

    /// Offset of the first byte that breaks UTF-8 (overlongs, surrogates and values over
    /// U+10FFFF included), or nil when the whole buffer is valid.
    static func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        let n = bytes.count
        guard let base = UnsafeRawPointer(bytes.baseAddress) else { return nil }
        while i < n {
            // Posts are mostly ASCII: skip 8 bytes at a time while no byte has its high bit set.
            while i + 8 <= n, base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            guard i < n else { break }
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return i
            }
            guard i + length <= n else { return i }
            let second = bytes[i + 1]
            guard second >= lower && second <= upper else { return i }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}
