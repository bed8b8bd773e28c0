import Foundation
import Testing
@testable import postclassd

/// The image field's base64 decoder against Foundation's encoder, and what it refuses.
@Suite struct Base64Tests {
    private func decode(_ text: String) -> [UInt8]? {
        Array(text.utf8).withUnsafeBufferPointer { Base64.decode($0) }
    }

    @Test("every length from 0 to 300 bytes round-trips, with and without line breaks")
    func roundTrips() {
        var seed: UInt64 = 7
        for length in 0...300 {
            let bytes = (0..<length).map { _ -> UInt8 in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: seed >> 33)
            }
            let data = Data(bytes)
            #expect(decode(data.base64EncodedString()) == bytes, "length \(length)")
            let wrapped = data.base64EncodedString(options: [.lineLength64Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
            #expect(decode(wrapped) == bytes, "length \(length), CRLF every 64 characters")
        }
    }

    @Test("refuses bytes outside the alphabet, data after padding, too much padding, partial quanta")
    func refusesWhatIsNotBase64() {
        for bad in ["***not base64***", "QUJD RA==", "QUI=QUJD", "QQ===", "Q===", "====", "QUJDR", "QUJDRA=", "QUJD-_==", "QUJD\tRA=="] {
            #expect(decode(bad) == nil, "\(bad.debugDescription) should be refused")
        }
        #expect(decode("") == [])
        #expect(decode("QQ==") == [0x41])
        #expect(decode("QUI=") == [0x41, 0x42])
        #expect(decode("QU\nI=\r\n") == [0x41, 0x42])
    }

    @Test("an image field with JSON escapes (\\/ and \\n) decodes like the plain one")
    func escapedImageField() throws {
        let jpeg = Data((0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        let plain = jpeg.base64EncodedString(options: .lineLength64Characters)
        let escaped = plain.replacingOccurrences(of: "/", with: #"\/"#).replacingOccurrences(of: "\r\n", with: #"\n"#)
        #expect(escaped.contains(#"\/"#))
        for field in [plain.replacingOccurrences(of: "\r\n", with: ""), escaped] {
            let record = Array(#"{"id":"a","image":"\#(field)"}"#.utf8)
            guard case let .success(input) = InputRecordDecoder.decode(record, limits: InputLimits()) else {
                Issue.record("record refused: \(field.prefix(80))")
                continue
            }
            #expect(input.post.imageJPEG == Array(jpeg))
        }
        let broken = Array(#"{"id":"a","image":"QUJD\/RA"}"#.utf8)
        guard case let .failure(reason) = InputRecordDecoder.decode(broken, limits: InputLimits()) else {
            Issue.record("a 7-character field was accepted")
            return
        }
        #expect(reason.code == "invalid_base64")
    }
}
