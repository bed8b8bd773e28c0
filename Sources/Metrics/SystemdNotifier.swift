import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Sends service state notifications to systemd over `$NOTIFY_SOCKET` (the `sd_notify`
/// protocol: newline-separated `KEY=value` lines in one unix datagram), without libsystemd.
///
/// A no-op when there is no socket (not run by systemd, or `Type=` other than `notify`), so the
/// daemon calls it unconditionally. Each notification opens, sends on and closes its own
/// non-blocking socket: they are rare (start, stop, one watchdog ping every few seconds), and a
/// full socket must never block the poll loop that sends the watchdog pings.
public struct SystemdNotifier: Sendable {
    /// The socket path; a leading `@` names a Linux abstract socket. `nil` disables notifying.
    public let socketPath: String?
    /// How often systemd expects `WATCHDOG=1`, from `WATCHDOG_USEC`; `nil` when there is no
    /// watchdog (not configured, or `WATCHDOG_PID` names another process).
    public let watchdogInterval: Duration?

    /// Creates a notifier for an explicit socket (tests, or a path from elsewhere).
    public init(socketPath: String?, watchdogInterval: Duration? = nil) {
        self.socketPath = socketPath.flatMap { $0.isEmpty ? nil : $0 }
        self.watchdogInterval = watchdogInterval
    }

    /// Creates a notifier from systemd's variables: `NOTIFY_SOCKET`, `WATCHDOG_USEC` and
    /// `WATCHDOG_PID` (when set and not `pid`, the watchdog belongs to another process).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                pid: Int32 = getpid()) {
        var interval: Duration?
        if let usecText = environment["WATCHDOG_USEC"], let usec = UInt64(usecText), usec > 0 {
            let ours = environment["WATCHDOG_PID"].map { Int32($0) == pid } ?? true
            if ours { interval = .microseconds(usec) }
        }
        self.init(socketPath: environment["NOTIFY_SOCKET"], watchdogInterval: interval)
    }

    /// Whether notifications go anywhere.
    public var isEnabled: Bool { socketPath != nil }

    /// `READY=1`: start-up finished (send once `/readyz` passes). An optional status line goes along.
    public func ready(status: String? = nil) throws(SystemdNotifyError) {
        try notify(["READY=1"] + (status.map { ["STATUS=" + Self.oneLine($0)] } ?? []))
    }

    /// `WATCHDOG=1`: the service is alive. Prefer ``Watchdog/loopAlive()``, which rate-limits it.
    public func watchdog() throws(SystemdNotifyError) {
        try notify(["WATCHDOG=1"])
    }

    /// `STOPPING=1`: the daemon is draining and will exit. An optional status line goes along.
    public func stopping(status: String? = nil) throws(SystemdNotifyError) {
        try notify(["STOPPING=1"] + (status.map { ["STATUS=" + Self.oneLine($0)] } ?? []))
    }

    /// `STATUS=…`: a one-line state shown by `systemctl status`.
    public func status(_ text: String) throws(SystemdNotifyError) {
        try notify(["STATUS=" + Self.oneLine(text)])
    }

    /// `EXTEND_TIMEOUT_USEC=…`: asks for `microseconds` more before the start (or stop) timeout
    /// fires; send it periodically while loading a large model, each time for the next step.
    public func extendTimeout(microseconds: UInt64) throws(SystemdNotifyError) {
        try notify(["EXTEND_TIMEOUT_USEC=\(microseconds)"])
    }

    /// Sends the given `KEY=value` assignments in one datagram.
    public func notify(_ assignments: [String]) throws(SystemdNotifyError) {
        guard let socketPath else { return }
        try Self.send(Array(assignments.joined(separator: "\n").utf8), to: socketPath)
    }

    /// Values are line-delimited in the protocol: a newline would start a bogus assignment.
    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    private static func send(_ message: [UInt8], to path: String) throws(SystemdNotifyError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathCapacity = MemoryLayout.size(ofValue: address.sun_path)

        // An abstract socket's name starts with a NUL byte and is not NUL-terminated; a path
        // socket's name is NUL-terminated, which `sockaddr_un()` already zeroed for us.
        var pathBytes = Array(path.utf8)
        let isAbstract = pathBytes.first == UInt8(ascii: "@")
        guard isAbstract || pathBytes.first == UInt8(ascii: "/") else {
            throw .invalidSocketPath(path)
        }
        if isAbstract { pathBytes[0] = 0 }
        let usedLength = pathBytes.count + (isAbstract ? 0 : 1)
        guard usedLength <= pathCapacity else { throw .socketPathTooLong(path, limit: pathCapacity) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)
            ?? MemoryLayout<sa_family_t>.size
        let addressLength = socklen_t(pathOffset + usedLength)

        #if canImport(Darwin)
        let socketType = SOCK_DGRAM
        #else
        let socketType = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            | Int32(SOCK_NONBLOCK.rawValue)
        #endif
        let fd = socket(AF_UNIX, socketType, 0)
        guard fd >= 0 else { throw .socketFailed(path, errno: errno) }
        defer { close(fd) }

        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { bytes in
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, addressLength)
                }
            }
        }
        guard sent >= 0 else { throw .sendFailed(path, errno: errno) }
        guard sent == message.count else { throw .shortSend(path, sent: sent, expected: message.count) }
    }
}

/// Why a notification did not reach systemd. The daemon should log it and go on: systemd will
/// act on the missing notification (start timeout, watchdog) if it matters.
public enum SystemdNotifyError: Error, Equatable, CustomStringConvertible {
    /// `NOTIFY_SOCKET` is neither an absolute path nor `@abstract`.
    case invalidSocketPath(String)
    /// The path does not fit in a `sockaddr_un`.
    case socketPathTooLong(String, limit: Int)
    /// `socket(2)` failed.
    case socketFailed(String, errno: Int32)
    /// `sendto(2)` failed (no such socket, nobody listening, buffer full).
    case sendFailed(String, errno: Int32)
    /// The datagram went out truncated.
    case shortSend(String, sent: Int, expected: Int)

    /// The message to log.

    public var description: String {
        switch self {
        case .invalidSocketPath(let path):
            "NOTIFY_SOCKET '\(path)' is neither an absolute path nor an abstract socket (@name); "
                + "unset it unless running under systemd"
        case .socketPathTooLong(let path, let limit):
            "NOTIFY_SOCKET '\(path)' is longer than the \(limit) bytes a unix socket address holds"
        case .socketFailed(let path, let code):
            "cannot create a socket to notify systemd at \(path): \(String(cString: strerror(code)))"
        case .sendFailed(let path, let code):
            "cannot notify systemd at \(path): \(String(cString: strerror(code)))"
                + (code == EAGAIN ? " (socket buffer full; systemd is not reading)" : "")
        case .shortSend(let path, let sent, let expected):
            "notification to systemd at \(path) was cut short: sent \(sent) of \(expected) bytes"
        }
    }
}
