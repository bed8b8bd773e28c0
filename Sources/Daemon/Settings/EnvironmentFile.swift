import Foundation

/// Reads a systemd `EnvironmentFile=` (such as `/etc/postclassd/postclassd.env`) the way systemd
/// does for what such a file holds: `KEY=value` lines, `#` and `;` comment lines, blank lines,
/// values in single or double quotes (a double-quoted value may hold `\"` and `\\`), and a
/// trailing backslash that continues a line. `postclassd check` uses it to see the settings the
/// service would get.
enum EnvironmentFile {
    /// The file the packaged unit reads.
    static let packaged = "/etc/postclassd/postclassd.env"

    static func load(_ path: String) throws(SettingsError) -> [String: String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SettingsError(setting: "env-file", source: .flag, problem: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws(SettingsError) -> [String: String] {
        var values: [String: String] = [:]
        var pending = ""
        for (number, rawLine) in text.components(separatedBy: .newlines).enumerated() {
            var line = pending + rawLine
            pending = ""
            if line.hasSuffix("\\") && !line.hasSuffix("\\\\") {
                pending = String(line.dropLast())
                continue
            }
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            guard let eq = line.firstIndex(of: "="), eq != line.startIndex else {
                throw SettingsError(setting: "env-file", source: nil, problem: "\(path) line \(number + 1): expected KEY=value")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            values[key] = unquote(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))
        }
        return values
    }

    private static func unquote(_ value: String) -> String {
        guard value.count >= 2, let first = value.first, first == value.last, first == "\"" || first == "'" else { return value }
        let inner = String(value.dropFirst().dropLast())
        guard first == "\"" else { return inner }
        return inner.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
    }
}
