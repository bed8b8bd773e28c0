/// A raw setting as it came from one source (flag, environment or config file), before it is
/// parsed: one string, a list, or a table (only `kafka` takes a table).
enum SettingValue: Sendable, Equatable {
    case scalar(String)
    case list([String])
    case table([String: String])
}

/// Where a setting came from, so an error can say where to fix it.
enum SettingSource: Sendable, CustomStringConvertible {
    case flag, environment(String), file(String)
    /// A variable set in a systemd environment file: its name, the file.
    case environmentFile(String, String)

    var description: String {
        switch self {
        case .flag: "command line"
        case .environment(let name): "environment variable \(name)"
        case .environmentFile(let name, let path): "\(name) in environment file \(path)"
        case .file(let path): "config file \(path)"
        }
    }
}

/// A bad setting: names it, says where it came from and what is allowed.
struct SettingsError: Error, CustomStringConvertible {
    let setting: String
    let source: SettingSource?
    let problem: String

    var description: String {
        let origin = source.map { " (from \($0))" } ?? ""
        return "setting \(setting)\(origin): \(problem)"
    }
}
