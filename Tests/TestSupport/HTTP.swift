import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A reply read by ``rawHTTP(port:method:path:host:)``.
public struct RawHTTPResponse {
    public var status: Int
    public var headers: [String: String]  // lower-cased names
    public var body: String
}

public enum TestSupportError: Error, CustomStringConvertible {
    case system(String, Int32)
    case malformed(String)

    public var description: String {
        switch self {
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        case .malformed(let text): "malformed HTTP response: \(text)"
        }
    }
}

/// One HTTP/1.1 request over a plain TCP socket (`Connection: close`, read to EOF), so the
/// tests exercise the server exactly as a scraper would, without URLSession's proxy handling.
public func rawHTTP(port: Int, method: String = "GET", path: String, host: String = "127.0.0.1") throws -> RawHTTPResponse {
    let fd = try connectTCP(port: port, host: host)
    defer { close(fd) }
    try sendAll(fd, "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    let (text, closed) = try receive(fd)
    guard closed else { throw TestSupportError.malformed("server did not close after Connection: close") }
    guard let split = text.range(of: "\r\n\r\n") else { throw TestSupportError.malformed(text) }
    let headLines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let statusParts = headLines.first?.split(separator: " ") ?? []
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestSupportError.malformed(text) }
    var headers: [String: String] = [:]
    for line in headLines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return RawHTTPResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
}

/// Runs a program to completion, feeding `stdin`; returns its exit status and combined output.
public func runProgram(_ path: String, _ arguments: [String], stdin: Data? = nil, includeStandardError: Bool = true,
                       timeout: Duration = .seconds(120)) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = includeStandardError ? output : FileHandle.nullDevice
    let input = Pipe()
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try process.run()
    if let stdin {
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
    }
    // A watchdog: a hung program is killed, so reading its output below ends.
    let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout / .milliseconds(1))), execute: killer)
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A connected TCP socket to `host:port` with a 5 s receive timeout; the caller closes it.
public func connectTCP(port: Int, host: String = "127.0.0.1") throws -> Int32 {
    let isIPv6 = host.contains(":")
    let fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError.system("socket", errno) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

    let connected: Int32
    if isIPv6 {
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET6, host, &address.sin6_addr)
        connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    } else {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
    guard connected == 0 else {
        let code = errno
        close(fd)
        throw TestSupportError.system("connect", code)
    }
    return fd
}

/// Sends `text` on a connected socket.
public func sendAll(_ fd: Int32, _ text: String) throws {
    let bytes = Array(text.utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
        throw TestSupportError.system("send", errno)
    }
}

/// Reads what arrives within the socket's timeout, until `done` says the text is complete or
/// the peer closes. Returns the text and whether the peer closed.
public func receive(_ fd: Int32, until done: (String) -> Bool = { _ in false }) throws -> (text: String, closed: Bool) {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &chunk, chunk.count, 0)
        if count < 0 { throw TestSupportError.system("recv", errno) }
        if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
        received.append(contentsOf: chunk[0..<count])
        let text = String(decoding: received, as: UTF8.self)
        if done(text) { return (text, false) }
    }
}

/// The first executable named `name` on the usual system paths, or nil.
public func findTool(_ name: String) -> String? {
    let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        + ["/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"]
    return paths.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Parses the sample lines of a Prometheus text exposition into `series -> value`, where the
/// series key is the name plus its labels sorted by name (`name{a="1",b="2"}`).
public func parseSamples(_ exposition: String) -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
            continue
        }
        let series = String(line[..<space])
        if let brace = series.firstIndex(of: "{"), series.hasSuffix("}") {
            let name = series[..<brace]
            let inner = series[series.index(after: brace)..<series.index(before: series.endIndex)]
            let labels = inner.split(separator: ",").sorted().joined(separator: ",")
            samples["\(name){\(labels)}"] = value
        } else {
            samples[series] = value
        }
    }
    return samples
}

/// The repository root, found from this file's path (Tests/TestSupport/HTTP.swift).
public let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
