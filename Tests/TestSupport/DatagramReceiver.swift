import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket the test owns, standing in for systemd's notification socket.
public final class DatagramReceiver {
    /// The value to put in `NOTIFY_SOCKET` (`@name` for an abstract socket).
    public let notifySocket: String
    private let fd: Int32

    /// Binds a path socket inside `directory`, or an abstract one when `directory` is nil.
    public init(directory: URL?) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError.system("socket", errno) }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var nameBytes: [UInt8]
        if let directory {
            notifySocket = directory.appendingPathComponent("notify.sock").path
            nameBytes = Array(notifySocket.utf8) + [0]
        } else {
            notifySocket = "@postclassd-test-\(getpid())-\(UUID().uuidString.prefix(8))"
            nameBytes = Array(notifySocket.utf8)
            nameBytes[0] = 0
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: nameBytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + nameBytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw TestSupportError.system("bind \(notifySocket)", code)
        }
    }

    deinit { close(fd) }

    /// The next datagram, or nil when none arrives within `timeout`.
    public func receive(timeout: TimeInterval) -> String? {
        var pollDescriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollDescriptor, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// Every datagram already queued.
    public func drain() -> [String] {
        var messages: [String] = []
        while let message = receive(timeout: 0) { messages.append(message) }
        return messages
    }
}
