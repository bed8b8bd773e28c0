import Foundation

/// What `postclassd check` prints: one line per check on standard output, as it finishes,
/// `OK <what>[: <detail>]` or `FAIL <what>: <reason>. <what to do>`.
struct CheckReport {
    private(set) var failures = 0
    private(set) var passed = 0

    mutating func ok(_ what: String, _ detail: String? = nil) {
        passed += 1
        emit("OK \(what)" + (detail.map { ": \($0)" } ?? ""))
    }

    mutating func fail(_ what: String, _ reason: String, todo: String) {
        failures += 1
        // The reason often ends a sentence of its own (librdkafka's do): one full stop only.
        var reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        while reason.hasSuffix(".") { reason.removeLast() }
        emit("FAIL \(what): \(reason). \(todo)")
    }

    private func emit(_ line: String) {
        print(line)
        fflush(nil)  // all streams: a pipe block-buffers, and each line should show as its check ends
    }
}
