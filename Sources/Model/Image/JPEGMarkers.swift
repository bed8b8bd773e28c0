/// A bounds-checked walk over a JPEG's marker segments (SOI up to SOS) to
/// find the EXIF orientation. Done in Swift rather than through libjpeg's
/// saved markers so that it is simple to test and never allocates.
enum JPEGMarkers {
    /// The orientation from the first APP1 "Exif" segment, or `.up` when
    /// there is none or it is malformed (a broken EXIF block must not make an
    /// otherwise good picture fail).
    static func orientation(in bytes: UnsafeRawBufferPointer) -> ImageOrientation {
        let n = bytes.count
        guard n >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return .up }
        var i = 2
        while i + 4 <= n {
            guard bytes[i] == 0xFF else { return .up }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { i += 2; continue }  // no length
            if marker == 0xDA || marker == 0xD9 { return .up }  // SOS / EOI: headers are over
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= n else { return .up }
            if marker == 0xE1 {
                let start = i + 4, end = i + 2 + length
                let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]  // "Exif\0\0"
                if end - start >= 6, (0..<6).allSatisfy({ bytes[start + $0] == exifHeader[$0] }) {
                    let tiff = UnsafeRawBufferPointer(rebasing: bytes[(start + 6)..<end])
                    return tiffOrientation(tiff) ?? .up
                }
            }
            i += 2 + length
        }
        return .up
    }

    /// Reads tag 0x0112 from IFD0 of a TIFF block, either byte order.
    static func tiffOrientation(_ t: UnsafeRawBufferPointer) -> ImageOrientation? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true  // "II"
        case (0x4D, 0x4D): little = false  // "MM"
        default: return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for k in 0..<count {
            let entry = ifd + 2 + 12 * k
            guard let tag = u16(entry), let type = u16(entry + 2) else { return nil }
            guard tag == 0x0112 else { continue }
            // SHORT is what the spec says; some writers use LONG. The value
            // sits left-justified in the 4-byte field in the file's byte order.
            let value: Int?
            switch type {
            case 3: value = u16(entry + 8)
            case 4: value = u32(entry + 8)
            default: value = nil
            }
            return value.flatMap(ImageOrientation.init(rawValue:))
        }
        return nil
    }
}
