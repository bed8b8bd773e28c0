import Foundation

/// Any JSON value, kept as decoded so a part of a manifest (a head's `config`) can be handed to
/// the type that understands it and decoded again there.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }

    /// Decodes this value as `T` (whose coding keys spell the JSON's snake_case names), saying
    /// where in `path` it went wrong.
    public func decode<T: Decodable>(_ type: T.Type, path: String, field: String) throws(ModelLoadError) -> T {
        do {
            let data = try JSONEncoder().encode(self)
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw .invalidConfig(path: path, detail: "\(field): \(ManifestDecoding.describe(error))")
        } catch {
            throw .invalidConfig(path: path, detail: "\(field): \(error)")
        }
    }
}

/// Turns Codable's errors into one line a person can act on.
enum ManifestDecoding {
    static func describe(_ error: DecodingError) -> String {
        func where_(_ path: [any CodingKey]) -> String {
            guard !path.isEmpty else { return "the top level" }
            // heads[0].labels: keys joined by dots, indices in brackets.
            return path.enumerated().map { i, key in
                key.intValue.map { "[\($0)]" } ?? (i == 0 ? key.stringValue : "." + key.stringValue)
            }.joined()
        }
        switch error {
        case let .keyNotFound(key, context):
            return "missing key '\(key.stringValue)' in \(where_(context.codingPath))"
        case let .typeMismatch(type, context):
            return "\(where_(context.codingPath)) should be \(type): \(context.debugDescription)"
        case let .valueNotFound(type, context):
            return "\(where_(context.codingPath)) is null but should be \(type)"
        case let .dataCorrupted(context):
            return "\(where_(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Where `data` stops being JSON ("Invalid value around character 13."), for the syntax errors
    /// `JSONDecoder` reports only as "not valid JSON"; nil when it parses.
    static func syntaxProblem(in data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        }
    }
}
