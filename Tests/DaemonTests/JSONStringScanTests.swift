import Foundation
import TestSupport
import Testing

/// The input scanner skips plain string bytes eight at a time; these records put every kind of
/// special byte (a closing quote, an escape, a control character) at every position within and
/// across an eight-byte word, through the real `postclassd classify` with the `rules` model, whose
/// sarcasm label reads the decoded text.
@Suite struct JSONStringScanTests {
    /// Runs `classify --model rules` on `lines` and returns one parsed JSON object per output line.
    private func classify(_ lines: [String]) throws -> [[String: Any]] {
        let input = Data((lines.joined(separator: "\n") + "\n").utf8)
        let run = try runProgram(Binaries.postclassd.path, ["classify", "-", "--model", "rules"], stdin: input,
                                 includeStandardError: false)
        #expect(run.status == 0, "classify failed: \(run.output.suffix(2000))")
        return run.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    private func sarcasm(_ record: [String: Any]) -> String? {
        ((record["labels"] as? [String: Any])?["sarcasm"] as? [String: Any])?["label"] as? String
    }

    private func errorMessage(_ record: [String: Any]) -> String? {
        (record["error"] as? [String: Any])?["message"] as? String
    }

    @Test("escapes after plain runs of every length decode; the rules model sees the decoded text")
    func escapesDecodeAtEveryOffset() throws {
        let lines = (0..<17).map { k in
            // "#sarca\u0073m" is "#sarcasm" only when the \u escape decodes.
            #"{"id":"e\#(k)","text":"\#(String(repeating: "a", count: k))\"q\" \\ \n\u00e9\ud83d\ude00 #sarca\u0073m","n":\#(k)}"#
        } + (0..<17).map { k in
            #"{"id":"p\#(k)","text":"\#(String(repeating: "b", count: k))","n":\#(k)}"#
        }
        let records = try classify(lines)
        #expect(records.count == 34)
        for (k, record) in records.prefix(17).enumerated() {
            #expect(sarcasm(record) == "sarcastic", "offset \(k): \(record)")
            #expect(record["n"] as? Int == k)
        }
        for (k, record) in records.suffix(17).enumerated() {
            #expect(sarcasm(record) == "not_sarcastic", "offset \(k): \(record)")
            #expect(record["n"] as? Int == k, "offset \(k): the member after the string was lost")
        }
    }

    @Test("the image member leaves the output whatever its value, null included; other members pass through")
    func imageMemberIsDroppedWhateverItsValue() throws {
        let records = try classify([
            #"{"id":"n1","text":"no picture","image":null,"lang":"en"}"#,
            #"{"id":"n2","image":null,"text":"still none","lang":"en"}"#,
        ])
        #expect(records.count == 2)
        for record in records {
            #expect(record["image"] == nil, "the image member was passed through: \(record)")
            #expect(record["lang"] as? String == "en", "a member after the image was lost: \(record)")
            #expect(errorMessage(record) == nil)
        }
    }

    @Test("a control character or a bad escape at any offset is refused with its reason")
    func badBytesAreFoundAtEveryOffset() throws {
        let plain = String(repeating: "c", count: 20)
        var lines: [String] = []
        for k in 0..<17 {
            let head = String(plain.prefix(k))
            lines.append(#"{"id":"c\#(k)","text":"\#(head)"# + "\u{01}" + #"tail"}"#)
            lines.append(#"{"id":"x\#(k)","text":"\#(head)\xtail"}"#)
            lines.append(#"{"id":"u\#(k)","text":"\#(head)"#)
        }
        let records = try classify(lines)
        #expect(records.count == 51)
        for k in 0..<17 {
            #expect(errorMessage(records[3 * k])?.contains("control character in a string") == true, "offset \(k): \(records[3 * k])")
            #expect(errorMessage(records[3 * k + 1])?.contains("invalid escape") == true, "offset \(k): \(records[3 * k + 1])")
            #expect(errorMessage(records[3 * k + 2])?.contains("unterminated string") == true, "offset \(k): \(records[3 * k + 2])")
        }
    }
}
