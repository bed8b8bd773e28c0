#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when the last reference goes away.
///
/// A class because it owns the mapping; immutable after `init`, so `Sendable`. Pages are read
/// from disk when first touched, so a large table costs only the rows that are used.
final class MappedFile: @unchecked Sendable {
    /// The path it was opened from.
    let path: String
    /// The file's size in bytes.
    let size: Int
    /// The start of the mapping; `nil` for an empty file (mmap refuses length 0).
    let base: UnsafeRawPointer?

    /// Maps `path`; the error text says why it could not (errno's message).
    init(path: String) throws(MappedFileError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw MappedFileError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw MappedFileError(path: path, reason: String(cString: strerror(errno))) }
        size = Int(st.st_size)
        guard size > 0 else { base = nil; return }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw MappedFileError(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }
}

/// A file that could not be opened or mapped.
struct MappedFileError: Error {
    let path: String
    let reason: String
}
