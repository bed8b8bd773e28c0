import Foundation

/// A `host:port` to serve metrics on, as given to `--metrics-address`.
///
/// Accepted forms: `127.0.0.1:9464`, `0.0.0.0:0` (port 0 picks a free port), `[::1]:9464`,
/// `localhost:9464`. An IPv6 address must be in brackets, since its colons would otherwise
/// be ambiguous with the port separator.
public struct MetricsAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host or IP address, without brackets.
    public var host: String
    /// The TCP port; 0 asks the kernel for a free one.
    public var port: Int

    /// The daemon's default, loopback only: exposing metrics wider is an explicit choice.
    public static let `default` = MetricsAddress(host: "127.0.0.1", port: 9464)

    /// Creates an address from its parts; `host` is an IP address or name, without brackets.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[ipv6]:port`.
    public init(parsing text: String) throws(MetricsAddressError) {
        let input = text.trimmingCharacters(in: .whitespaces)
        guard !input.isEmpty else { throw .empty }

        let host: Substring
        let portText: Substring
        if input.hasPrefix("[") {
            guard let close = input.firstIndex(of: "]") else { throw .unclosedBracket(input) }
            host = input[input.index(after: input.startIndex)..<close]
            let rest = input[input.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .missingPort(input) }
            portText = rest.dropFirst()
        } else {
            guard let colon = input.lastIndex(of: ":") else { throw .missingPort(input) }
            host = input[..<colon]
            if host.contains(":") { throw .unbracketedIPv6(input) }
            portText = input[input.index(after: colon)...]
        }
        guard !host.isEmpty else { throw .missingHost(input) }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw .badPort(input, String(portText))
        }
        self.init(host: String(host), port: port)
    }

    /// The address in the form ``init(parsing:)`` accepts (IPv6 in brackets).
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Why a `--metrics-address` value was rejected; each message says how to fix it.
public enum MetricsAddressError: Error, Equatable, CustomStringConvertible {
    /// Nothing was given.
    case empty
    /// No `:port` (the input is attached).
    case missingPort(String)
    /// Nothing before `:port`.
    case missingHost(String)
    /// The port is not a number from 0 to 65535 (input, port text).
    case badPort(String, String)
    /// An IPv6 address without brackets, e.g. `::1:9464`.
    case unbracketedIPv6(String)
    /// `[` without its `]`.
    case unclosedBracket(String)

    /// The message to show, naming `--metrics-address` and a valid example.

    public var description: String {
        switch self {
        case .empty:
            "--metrics-address is empty; give host:port, e.g. 127.0.0.1:9464"
        case .missingPort(let input):
            "--metrics-address \(input) has no port; give host:port, e.g. 127.0.0.1:9464"
        case .missingHost(let input):
            "--metrics-address \(input) has no host; use 0.0.0.0:PORT for all interfaces or 127.0.0.1:PORT for loopback"
        case .badPort(let input, let port):
            "--metrics-address \(input): port '\(port)' is not a number from 0 to 65535 (0 picks a free port)"
        case .unbracketedIPv6(let input):
            "--metrics-address \(input): put an IPv6 address in brackets, e.g. [::1]:9464"
        case .unclosedBracket(let input):
            "--metrics-address \(input): missing ']' after the IPv6 address, e.g. [::1]:9464"
        }
    }
}
