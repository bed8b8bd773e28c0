import Foundation

/// The text clean-up and splitting that runs before WordPiece, with the semantics of the
/// `tokenizers` package's `BertNormalizer` (clean_text, handle_chinese_chars, strip_accents,
/// lowercase) and `BertPreTokenizer`.
///
/// Works on Unicode scalars (Rust `char`s), not Swift `Character`s: grapheme clusters would join
/// a base letter with its accent, and the reference counts and splits scalars.
///
/// Unicode versions: the reference takes general categories (control, punctuation, non-spacing
/// mark) and canonical decompositions from Unicode 8.0 tables, but whitespace and lower-casing from
/// a current one. So a scalar assigned after 8.0 is, for categories and NFD, an unassigned
/// letter-like character here too; the few whose category changed since are listed in
/// `categoryChanges`. A per-code-point comparison with `tokenizers` over all of Unicode found no
/// other difference (tools/golden/make_tokenizer_cases.py exercises the cases).
public struct BasicTokenizer: Sendable {
    /// Lower-case and strip accents (uncased checkpoints).
    public var lowercase: Bool

    /// A tokenizer for uncased (`lowercase = true`) or cased vocabularies.
    public init(lowercase: Bool = true) {
        self.lowercase = lowercase
    }

    /// Normalises `text` and splits it into words and single punctuation marks.
    public func split(_ text: Substring) -> [[Unicode.Scalar]] {
        words(in: normalise(text))
    }

    /// The normaliser: drop control characters, map whitespace to spaces, surround CJK ideographs
    /// with spaces, then (uncased) NFD + drop non-spacing marks, then lower-case.
    public func normalise(_ text: Substring) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.unicodeScalars.count)
        var allASCII = true
        for c in text.unicodeScalars {
            if c.value == 0 || c.value == 0xFFFD || Self.isControl(c) { continue }
            if Self.isWhitespace(c) { out.append(" "); continue }
            if Self.isChineseCharacter(c) {
                out.append(" "); out.append(c); out.append(" ")
                allASCII = false
                continue
            }
            if !c.isASCII { allASCII = false }
            out.append(c)
        }
        guard lowercase else { return out }
        if allASCII {
            // Fast path: ASCII has nothing to decompose and lower-cases one-to-one.
            return out.map { ("A"..."Z").contains($0) ? Unicode.Scalar($0.value + 32) ?? $0 : $0 }
        }
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(out.count)
        for c in Self.decomposed(out) where Self.category(c) != .nonspacingMark {
            // Per-scalar full mapping (like Rust's char::to_lowercase), not String.lowercased(),
            // which would apply the context-dependent final-sigma rule.
            if c.isASCII {
                result.append(("A"..."Z").contains(c) ? Unicode.Scalar(c.value + 32) ?? c : c)
            } else {
                result.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return result
    }

    /// NFD of the scalars the reference's tables know; newer scalars pass through unchanged.
    static func decomposed(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count)
        var run = String.UnicodeScalarView()
        func flush() {
            guard !run.isEmpty else { return }
            result.append(contentsOf: String(run).decomposedStringWithCanonicalMapping.unicodeScalars)
            run = String.UnicodeScalarView()
        }
        for c in scalars {
            if isKnownToReference(c) {
                run.append(c)
            } else {
                flush()
                result.append(c)
            }
        }
        flush()
        return result
    }

    /// The Unicode version of the reference's category and decomposition tables.
    static let referenceUnicodeVersion = (major: 8, minor: 0)

    /// Whether `c` was assigned by `referenceUnicodeVersion`.
    static func isKnownToReference(_ c: Unicode.Scalar) -> Bool {
        guard let age = c.properties.age else { return false }
        return (age.major, age.minor) <= referenceUnicodeVersion
    }

    /// Scalars whose general category changed after Unicode 8.0, with their 8.0 category.
    static let categoryChanges: [UInt32: Unicode.GeneralCategory] = [
        0x166D: .otherPunctuation,   // CANADIAN SYLLABICS CHI SIGN, now So
        0x1734: .nonspacingMark,     // HANUNOO SIGN PAMUDPOD, now Mc
        0x1885: .otherLetter,        // MONGOLIAN LETTER ALI GALI BALUDA, now Mn
        0x1886: .otherLetter,        // MONGOLIAN LETTER ALI GALI THREE BALUDA, now Mn
        0xA9BD: .spacingMark,        // JAVANESE CONSONANT SIGN KERET, now Mn
        0x111C9: .otherPunctuation,  // SHARADA SANDHI MARK, now Mn
        0x1171E: .nonspacingMark,    // AHOM CONSONANT SIGN MEDIAL RA, now Mc
    ]

    /// The general category as the reference's tables give it (unassigned if newer than 8.0).
    static func category(_ c: Unicode.Scalar) -> Unicode.GeneralCategory {
        if let old = categoryChanges[c.value] { return old }
        return isKnownToReference(c) ? c.properties.generalCategory : .unassigned
    }

    /// The pre-tokenizer: split on whitespace (dropped) and isolate each punctuation mark.
    public func words(in scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in scalars {
            if Self.isWhitespace(c) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
            } else if Self.isPunctuation(c) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
                words.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Tab, newline and carriage return count as whitespace, like the White_Space property.
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case " ", "\t", "\n", "\r": return true
        default: return !c.isASCII && c.properties.isWhitespace
        }
    }

    /// Control, format and private-use characters (Cc, Cf, Co), except tab, newline and carriage
    /// return, which the reference keeps as whitespace. Unassigned code points (Cn) are kept: the
    /// reference's check leaves them to WordPiece, which makes them `[UNK]`.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        if c.isASCII { return c.value < 0x20 || c.value == 0x7F }
        switch category(c) {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// BERT's punctuation: every ASCII non-alphanumeric printable (so `$`, `+`, `^`, `` ` `` too,
    /// which Unicode files under symbols) and every Unicode P* category.
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 128 {
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        switch category(c) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK ideograph ranges that BERT splits character by character (not Hangul or kana).
    /// The reference skips 0x2B820...0x2B91F (the start of Extension E), so this does too.
    static func isChineseCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
