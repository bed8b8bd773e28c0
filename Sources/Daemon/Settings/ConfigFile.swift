import Foundation
import Yams

/// Reads a config file (YAML, or TOML by its `.toml` extension) into raw settings keyed by their
/// flag names (`batch-size`; `batch_size` is accepted too).
enum ConfigFile {
    static func load(_ path: String) throws(SettingsError) -> [String: SettingValue] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SettingsError(setting: "config", source: .flag, problem: "cannot read \(path): \(error.localizedDescription)")
        }
        let raw = path.hasSuffix(".toml") ? try parseTOML(text, path: path) : try parseYAML(text, path: path)
        var settings: [String: SettingValue] = [:]
        for (key, value) in raw { settings[key.replacingOccurrences(of: "_", with: "-")] = value }
        return settings
    }

    private static func parseYAML(_ text: String, path: String) throws(SettingsError) -> [String: SettingValue] {
        let node: Any?
        do {
            node = try Yams.load(yaml: text)
        } catch {
            throw SettingsError(setting: "config", source: .file(path), problem: "not valid YAML: \(error)")
        }
        guard let node else { return [:] }
        guard let top = node as? [String: Any] else {
            throw SettingsError(setting: "config", source: .file(path), problem: "the top level must be a mapping of setting: value")
        }
        var result: [String: SettingValue] = [:]
        for (key, value) in top {
            switch value {
            case let list as [Any]:
                result[key] = .list(list.map { "\($0)" })
            case let table as [String: Any]:
                result[key] = .table(table.mapValues { "\($0)" })
            default:
                result[key] = .scalar("\(value)")
            }
        }
        return result
    }

    /// The TOML postclassd needs: `key = value` lines with strings, numbers, booleans and one-line
    /// arrays, and a `[kafka]` table of librdkafka properties.
    private static func parseTOML(_ text: String, path: String) throws(SettingsError) -> [String: SettingValue] {
        var result: [String: SettingValue] = [:]
        var table: String?
        var tableValues: [String: String] = [:]
        func bad(_ line: Int, _ problem: String) -> SettingsError {
            SettingsError(setting: "config", source: .file(path), problem: "line \(line): \(problem)")
        }
        for (number, rawLine) in text.components(separatedBy: .newlines).enumerated() {
            let line = stripComment(rawLine).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else { throw bad(number + 1, "only [table] headers are supported") }
                if let table { result[table] = .table(tableValues) }
                table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                tableValues = [:]
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw bad(number + 1, "expected key = value") }
            let key = unquote(line[..<eq].trimmingCharacters(in: .whitespaces))
            let valueText = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if table != nil {
                guard let scalar = tomlScalar(valueText) else { throw bad(number + 1, "value of \(key) is not a TOML string, number or boolean") }
                tableValues[key] = scalar
            } else if valueText.hasPrefix("[") {
                guard valueText.hasSuffix("]") else { throw bad(number + 1, "arrays must be on one line") }
                let inner = valueText.dropFirst().dropLast()
                var items: [String] = []
                for item in splitTOMLArray(String(inner)) {
                    guard let scalar = tomlScalar(item) else { throw bad(number + 1, "array item \(item) is not a TOML string or number") }
                    items.append(scalar)
                }
                result[key] = .list(items)
            } else {
                guard let scalar = tomlScalar(valueText) else { throw bad(number + 1, "value of \(key) is not a TOML string, number or boolean") }
                result[key] = .scalar(scalar)
            }
        }
        if let table { result[table] = .table(tableValues) }
        return result
    }

    private static func stripComment(_ line: String) -> String {
        var inString: Character?
        for (i, c) in zip(line.indices, line) {
            if let quote = inString {
                if c == quote { inString = nil }
            } else if c == "\"" || c == "'" {
                inString = c
            } else if c == "#" {
                return String(line[..<i])
            }
        }
        return line
    }

    private static func unquote(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == text.last, first == "\"" || first == "'" {
            return String(text.dropFirst().dropLast())
        }
        return text
    }

    private static func tomlScalar(_ text: String) -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.count >= 2, let first = t.first, first == t.last, first == "\"" || first == "'" {
            let inner = String(t.dropFirst().dropLast())
            guard first == "\"" else { return inner }
            return inner.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
        }
        if t == "true" || t == "false" || Double(t.replacingOccurrences(of: "_", with: "")) != nil {
            return t.replacingOccurrences(of: "_", with: "")
        }
        return nil
    }

    private static func splitTOMLArray(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var inString: Character?
        for c in text {
            if let quote = inString {
                current.append(c)
                if c == quote { inString = nil }
            } else if c == "\"" || c == "'" {
                inString = c
                current.append(c)
            } else if c == "," {
                items.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { items.append(current) }
        return items.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
