import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors from reading a safetensors file. Each names the file and, where one is involved, the tensor.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file ends before the header or a tensor's data does.
    case truncated(file: String, detail: String)
    /// The header is not the JSON the format prescribes.
    case invalidHeader(file: String, detail: String)
    /// A tensor the model needs is not in the file.
    case missingTensor(file: String, tensor: String)
    /// A tensor has another shape than the model expects.
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
    /// A tensor's dtype is not one of F32, F16, BF16.
    case unsupportedDType(file: String, tensor: String, dtype: String)

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "cannot open safetensors file \(file): \(reason)"
        case let .truncated(file, detail):
            return "safetensors file \(file) is truncated: \(detail); copy it again (scripts/setup-models.sh verifies checksums)"
        case let .invalidHeader(file, detail):
            return "safetensors file \(file) has an invalid header: \(detail)"
        case let .missingTensor(file, tensor):
            return "safetensors file \(file) has no tensor '\(tensor)'; is it a checkpoint of the expected architecture?"
        case let .shapeMismatch(file, tensor, expected, found):
            return "tensor '\(tensor)' in \(file) has shape \(found), expected \(expected)"
        case let .unsupportedDType(file, tensor, dtype):
            return "tensor '\(tensor)' in \(file) has dtype \(dtype); supported: F32, F16, BF16"
        }
    }
}

/// The element types this reader converts to `Float`.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 2 }
}

/// A memory-mapped safetensors file (Hugging Face's format: an 8-byte little-endian header length,
/// a JSON header of `name: {dtype, shape, data_offsets}`, then the raw data).
///
/// The mapping stays open for the life of the object, so reading a tensor touches only its pages.
/// A class because it owns the mapping; it is immutable after `init` and therefore `Sendable`.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Where a tensor's data lies, as the header says.
    public struct Entry: Sendable, Equatable {
        /// The dtype string as written in the header (e.g. "F32", "I64").
        public let dtype: String
        /// The tensor's shape.
        public let shape: [Int]
        /// Byte range relative to the start of the data section.
        public let offsets: Range<Int>
    }

    /// The path the file was opened from, used in every error.
    public let path: String
    /// All tensors in the header, by name.
    public let entries: [String: Entry]
    /// The header's `__metadata__`, if present.
    public let metadata: [String: String]

    private let base: UnsafeMutableRawPointer?
    private let mappedSize: Int
    private let dataStart: Int

    /// Opens and maps `path`, parses and checks the header. No tensor data is read.
    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw .cannotOpen(file: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw .cannotOpen(file: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw .truncated(file: path, detail: "\(size) bytes, shorter than the 8-byte header length")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw .cannotOpen(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        var headerLength: UInt64 = 0
        withUnsafeMutableBytes(of: &headerLength) { $0.copyMemory(from: UnsafeRawBufferPointer(start: mapped, count: 8)) }
        headerLength = UInt64(littleEndian: headerLength)
        guard headerLength <= UInt64(size - 8) else {
            munmap(mapped, size)
            throw .truncated(file: path, detail: "header says \(headerLength) bytes but the file has \(size - 8) after the length")
        }
        let headerData = Data(bytes: mapped + 8, count: Int(headerLength))
        let parsed: (entries: [String: Entry], metadata: [String: String])
        do {
            parsed = try Self.parseHeader(headerData, file: path, dataSize: size - 8 - Int(headerLength))
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.base = mapped
        self.mappedSize = size
        self.dataStart = 8 + Int(headerLength)
        self.entries = parsed.entries
        self.metadata = parsed.metadata
    }

    deinit {
        if let base { munmap(base, mappedSize) }
    }

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// Reads tensor `name` as `Float`, converting F16 and BF16.
    ///
    /// - Parameter expectedShape: when given, the shape the caller needs; -1 matches any extent.
    public func tensor(_ name: String, expectedShape: [Int]? = nil) throws(SafeTensorsError) -> Tensor {
        guard let entry = entries[name] else { throw .missingTensor(file: path, tensor: name) }
        if let expectedShape {
            let matches = expectedShape.count == entry.shape.count
                && zip(expectedShape, entry.shape).allSatisfy { $0 == -1 || $0 == $1 }
            guard matches else {
                throw .shapeMismatch(file: path, tensor: name, expected: expectedShape, found: entry.shape)
            }
        }
        guard let dtype = SafeTensorsDType(rawValue: entry.dtype) else {
            throw .unsupportedDType(file: path, tensor: name, dtype: entry.dtype)
        }
        let count = entry.shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        guard count > 0, let base else {
            return Tensor(uncheckedShape: entry.shape, data: values)
        }
        let src = UnsafeRawPointer(base + dataStart + entry.offsets.lowerBound)
        values.withUnsafeMutableBufferPointer { dst in
            switch dtype {
            case .f32:
                // The data section need not be 4-byte aligned, so copy bytes rather than bind memory.
                UnsafeMutableRawBufferPointer(dst).copyMemory(from: UnsafeRawBufferPointer(start: src, count: count * 4))
                for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: dst[i].bitPattern)) }
            case .f16:
                for i in 0..<count {
                    let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(Float16(bitPattern: bits))
                }
            case .bf16:
                // bfloat16 is the top half of a float32.
                for i in 0..<count {
                    let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(bitPattern: UInt32(bits) << 16)
                }
            }
        }
        return Tensor(uncheckedShape: entry.shape, data: values)
    }

    /// Reads a rank-1 tensor's values.
    public func vector(_ name: String, count: Int? = nil) throws(SafeTensorsError) -> [Float] {
        try tensor(name, expectedShape: [count ?? -1]).data
    }

    private static func parseHeader(_ data: Data, file: String, dataSize: Int) throws(SafeTensorsError)
        -> (entries: [String: Entry], metadata: [String: String]) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw .invalidHeader(file: file, detail: "not JSON (\(error.localizedDescription))")
        }
        guard let header = object as? [String: Any] else {
            throw .invalidHeader(file: file, detail: "not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let fields = value as? [String: Any],
                  let dtype = fields["dtype"] as? String,
                  let shape = (fields["shape"] as? [NSNumber])?.map(\.intValue),
                  let offsets = (fields["data_offsets"] as? [NSNumber])?.map(\.intValue),
                  offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1],
                  shape.allSatisfy({ $0 >= 0 }) else {
                throw .invalidHeader(file: file, detail: "entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard offsets[1] <= dataSize else {
                throw .truncated(file: file, detail: "tensor '\(name)' ends at byte \(offsets[1]) of the data section, which has only \(dataSize)")
            }
            if let known = SafeTensorsDType(rawValue: dtype) {
                let need = shape.reduce(1, *) * known.size
                guard offsets[1] - offsets[0] == need else {
                    throw .invalidHeader(file: file, detail: "tensor '\(name)' of shape \(shape) and dtype \(dtype) needs \(need) bytes, has \(offsets[1] - offsets[0])")
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, offsets: offsets[0]..<offsets[1])
        }
        return (entries, metadata)
    }
}
