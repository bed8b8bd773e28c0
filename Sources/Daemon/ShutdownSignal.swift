import Dispatch
import Foundation

/// Waits for SIGTERM or SIGINT (handled, so the process can clean up instead of dying).
enum ShutdownSignal {
    /// Blocks until SIGTERM or SIGINT arrives and returns its name.
    static func wait() -> String {
        let received = DispatchSemaphore(value: 0)
        let name = SignalName()
        var sources: [DispatchSourceSignal] = []
        for (number, label) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                name.set(label)
                received.signal()
            }
            source.resume()
            sources.append(source)
        }
        received.wait()
        for source in sources { source.cancel() }
        return name.get()
    }
}

/// The name of the signal that arrived, set from a signal handler's queue.
private final class SignalName: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""

    func set(_ name: String) { lock.withLock { if value.isEmpty { value = name } } }
    func get() -> String { lock.withLock { value } }
}
