/// The subset of TOML the cluster file uses (SPEC §10.1): comments,
/// `[table]`, `[[array-of-tables]]`, `[array.sub]` (a sub-table of the last
/// array element), `key = value` with basic strings, integers (with `_`),
/// booleans, arrays of those, and inline tables. Anything else is an error
/// naming the line — never a guess.
public enum TOML {
    public indirect enum Value: Equatable, Sendable {
        case string(String)
        case int(Int)
        case bool(Bool)
        case array([Value])
        case table([String: Value])
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let line: Int
        public let message: String
        public var description: String { "cluster file line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws(ParseError) -> [String: Value] {
        var root: [String: Value] = [:]
        var path: [String] = []
        var arrayIndex: Int?   // set while inside [[path]] (or a sub-table of it)
        var arrayDepth = 0
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = n + 1
            var p = Parser(Array(raw.utf8), line: lineNo)
            p.skipSpace()
            if p.atEnd || p.peek == UInt8(ascii: "#") { continue }
            if p.peek == UInt8(ascii: "[") {
                let double = p.peek(1) == UInt8(ascii: "[")
                p.pos += double ? 2 : 1
                let keys = try p.dottedKey()
                p.skipSpace()
                guard p.eat("]"), !double || p.eat("]") else { throw ParseError(line: lineNo, message: "unterminated table header") }
                try p.endOfLine()
                if double {
                    var arr: [Value] = []
                    if case .array(let a)? = root[keys.joined(separator: ".")] { arr = a } else if root[keys.joined(separator: ".")] != nil {
                        throw ParseError(line: lineNo, message: "\(keys.joined(separator: ".")) is not an array of tables")
                    }
                    arr.append(.table([:]))
                    root[keys.joined(separator: ".")] = .array(arr)
                    path = keys
                    arrayIndex = arr.count - 1
                    arrayDepth = keys.count
                } else if let _ = arrayIndex, keys.count > arrayDepth, Array(keys.prefix(arrayDepth)) == Array(path.prefix(arrayDepth)) {
                    path = keys   // sub-table of the current array element
                } else {
                    guard root[keys.joined(separator: ".")] == nil else { throw ParseError(line: lineNo, message: "table [\(keys.joined(separator: "."))] defined twice") }
                    root[keys.joined(separator: ".")] = .table([:])
                    path = keys
                    arrayIndex = nil
                }
                continue
            }
            let key = try p.dottedKey()
            p.skipSpace()
            guard p.eat("=") else { throw ParseError(line: lineNo, message: "expected `key = value`") }
            p.skipSpace()
            let value = try p.value()
            try p.endOfLine()
            try insert(value, key: key, path: path, arrayIndex: arrayIndex, arrayDepth: arrayDepth, into: &root, line: lineNo)
        }
        return root
    }

    static func insert(_ v: Value, key: [String], path: [String], arrayIndex: Int?, arrayDepth: Int, into root: inout [String: Value], line: Int) throws(ParseError) {
        func set(_ t: inout [String: Value], _ keys: ArraySlice<String>) throws(ParseError) {
            let k = keys.first!
            if keys.count == 1 {
                guard t[k] == nil else { throw ParseError(line: line, message: "key \(k) defined twice") }
                t[k] = v
                return
            }
            var sub: [String: Value] = [:]
            if let existing = t[k] {
                guard case .table(let s) = existing else { throw ParseError(line: line, message: "\(k) is not a table") }
                sub = s
            }
            try set(&sub, keys.dropFirst())
            t[k] = .table(sub)
        }
        if let i = arrayIndex {
            let name = path.prefix(arrayDepth).joined(separator: ".")
            guard case .array(var arr)? = root[name], case .table(var t) = arr[i] else { return }
            try set(&t, ArraySlice(Array(path.dropFirst(arrayDepth)) + key))
            arr[i] = .table(t)
            root[name] = .array(arr)
        } else if path.isEmpty {
            try set(&root, ArraySlice(key))
        } else {
            let name = path.joined(separator: ".")
            guard case .table(var t)? = root[name] else { return }
            try set(&t, ArraySlice(key))
            root[name] = .table(t)
        }
    }

    struct Parser {
        let b: [UInt8]
        var pos = 0
        let line: Int
        init(_ b: [UInt8], line: Int) { self.b = b; self.line = line }
        var atEnd: Bool { pos >= b.count }
        var peek: UInt8? { pos < b.count ? b[pos] : nil }
        func peek(_ k: Int) -> UInt8? { pos + k < b.count ? b[pos + k] : nil }
        func error(_ m: String) -> ParseError { ParseError(line: line, message: m) }
        mutating func skipSpace() { while let c = peek, c == 0x20 || c == 0x09 || c == 0x0D { pos += 1 } }
        mutating func eat(_ s: Character) -> Bool {
            if peek == s.asciiValue { pos += 1; return true }
            return false
        }
        mutating func endOfLine() throws(ParseError) {
            skipSpace()
            if atEnd || peek == UInt8(ascii: "#") { return }
            throw error("unexpected text after the value")
        }

        mutating func dottedKey() throws(ParseError) -> [String] {
            var keys: [String] = []
            repeat {
                skipSpace()
                if peek == UInt8(ascii: "\"") { keys.append(try string()) } else {
                    let start = pos
                    while let c = peek, (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x5F || c == 0x2D { pos += 1 }
                    guard pos > start else { throw error("expected a key") }
                    keys.append(String(decoding: b[start..<pos], as: UTF8.self))
                }
                skipSpace()
            } while eat(".")
            return keys
        }

        mutating func string() throws(ParseError) -> String {
            guard eat("\"") else { throw error("expected a string") }
            var out: [UInt8] = []
            while let c = peek {
                pos += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c == UInt8(ascii: "\\") {
                    guard let e = peek else { break }
                    pos += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
                    default: throw error("unsupported escape \\\(Character(UnicodeScalar(e)))")
                    }
                } else {
                    out.append(c)
                }
            }
            throw error("unterminated string")
        }

        mutating func value() throws(ParseError) -> Value {
            guard let c = peek else { throw error("missing value") }
            if c == UInt8(ascii: "\"") { return .string(try string()) }
            if c == UInt8(ascii: "[") {
                pos += 1
                var items: [Value] = []
                skipSpace()
                if eat("]") { return .array([]) }
                while true {
                    skipSpace()
                    items.append(try value())
                    skipSpace()
                    if eat("]") { return .array(items) }
                    guard eat(",") else { throw error("expected , or ] in array") }
                    skipSpace()
                    if eat("]") { return .array(items) }
                }
            }
            if c == UInt8(ascii: "{") {
                pos += 1
                var t: [String: Value] = [:]
                skipSpace()
                if eat("}") { return .table(t) }
                while true {
                    let k = try dottedKey()
                    guard k.count == 1 else { throw error("dotted keys in inline tables are not supported") }
                    guard eat("=") else { throw error("expected = in inline table") }
                    skipSpace()
                    guard t[k[0]] == nil else { throw error("key \(k[0]) defined twice") }
                    t[k[0]] = try value()
                    skipSpace()
                    if eat("}") { return .table(t) }
                    guard eat(",") else { throw error("expected , or } in inline table") }
                }
            }
            let start = pos
            while let d = peek, d != 0x2C, d != 0x5D, d != 0x7D, d != 0x20, d != 0x09, d != 0x23, d != 0x0D { pos += 1 }
            let word = String(decoding: b[start..<pos], as: UTF8.self)
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            if let i = Int(word.replacingOccurrences(of: "_", with: "")) { return .int(i) }
            throw error("cannot read value `\(word)` (strings need quotes)")
        }
    }
}

private extension String {
    func replacingOccurrences(of a: String, with b: String) -> String { split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b) }
}
