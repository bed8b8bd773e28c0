import Dispatch
import Foundation
import Synchronization

/// SIGTERM and SIGINT, handled so the process can drain and clean up instead of dying.
enum ShutdownSignal {
    /// Blocks until SIGTERM or SIGINT arrives and returns its name.
    static func wait() -> String {
        let received = DispatchSemaphore(value: 0)
        let name = Mutex("")
        let handlers = install { signal, _ in
            name.withLock { if $0.isEmpty { $0 = signal } }
            received.signal()
        }
        received.wait()
        handlers.cancel()
        return name.withLock { $0 }
    }

    /// Calls `handler` with the signal's name and how many shutdown signals have arrived so far,
    /// on a Dispatch queue, for every SIGTERM or SIGINT until the handlers are cancelled.
    static func install(_ handler: @escaping @Sendable (String, Int) -> Void) -> Handlers {
        let count = Atomic<Int>(0)
        var sources: [DispatchSourceSignal] = []
        for (number, label) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let n = count.add(1, ordering: .relaxed).newValue
                handler(label, n)
            }
            source.resume()
            sources.append(source)
        }
        return Handlers(sources: sources)
    }

    /// Installed signal handlers; `cancel` removes them.
    final class Handlers: Sendable {
        private let sources: Mutex<[DispatchSourceSignal]>

        fileprivate init(sources: sending [DispatchSourceSignal]) {
            self.sources = Mutex(sources)
        }

        func cancel() {
            sources.withLock { sources in
                for source in sources { source.cancel() }
            }
        }
    }
}
