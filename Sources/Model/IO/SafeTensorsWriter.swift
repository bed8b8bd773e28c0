import Foundation

/// Writes safetensors files: used by tests to build checkpoints and by tools that convert weights.
public struct SafeTensorsWriter: Sendable {
    private var items: [(name: String, shape: [Int], dtype: SafeTensorsDType, values: [Float])] = []

    /// An empty file.
    public init() {}

    /// Adds a tensor, stored as `dtype` (F16 and BF16 round the values).
    public mutating func add(_ name: String, _ tensor: Tensor, as dtype: SafeTensorsDType = .f32) {
        items.append((name, tensor.shape, dtype, tensor.data))
    }

    /// The file's bytes: header padded with spaces to a multiple of 8, then the data in order.
    public func serialized() -> Data {
        var header = "{"
        var payload = Data()
        for (i, item) in items.enumerated() {
            let start = payload.count
            switch item.dtype {
            case .f32:
                #if _endian(little)
                // One copy of the whole buffer: files of millions of values (image region grids).
                item.values.withUnsafeBufferPointer { payload.append($0) }
                #else
                for v in item.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
                #endif
            case .f16:
                for v in item.values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { payload.append(contentsOf: $0) } }
            case .bf16:
                // Round to nearest even on the dropped 16 bits.
                for v in item.values {
                    let bits = v.bitPattern
                    let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
                    withUnsafeBytes(of: rounded.littleEndian) { payload.append(contentsOf: $0) }
                }
            }
            if i > 0 { header += "," }
            let shape = item.shape.map(String.init).joined(separator: ",")
            header += "\"\(item.name)\":{\"dtype\":\"\(item.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(start),\(payload.count)]}"
        }
        header += "}"
        while header.utf8.count % 8 != 0 { header += " " }
        var out = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(payload)
        return out
    }

    /// Writes the file to `url` atomically.
    public func write(to url: URL) throws {
        try serialized().write(to: url, options: .atomic)
    }
}
