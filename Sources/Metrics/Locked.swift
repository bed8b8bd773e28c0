import Foundation

/// A value guarded by a lock, for the few places in this module that share mutable state
/// between the poll loop, worker threads and the HTTP server's event loop.
///
/// A class (not a struct) because the lock and the value must be shared by reference;
/// `@unchecked Sendable` is sound because every access goes through `withLock`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
