/// A JSON object of strings, numbers, booleans and nulls, nothing nested: what dumbno's clients
/// send (`{"src": "10.0.0.1", "dst": "10.0.0.2", "proto": "tcp", "sport": 4000, "dport": 80}`).
/// No Foundation; anything else is refused (nil).
enum FlatJSON {
    enum Value: Equatable {
        case string(String), number(Double), bool(Bool), null
    }

    static func parse(_ bytes: [UInt8]) -> [String: Value]? {
        var p = Parser(b: bytes)
        return p.object()
    }

    struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func skip() { while i < b.count && (b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D) { i += 1 } }

        mutating func expect(_ c: UInt8) -> Bool {
            skip()
            guard i < b.count && b[i] == c else { return false }
            i += 1
            return true
        }

        mutating func object() -> [String: Value]? {
            guard expect(UInt8(ascii: "{")) else { return nil }
            var out: [String: Value] = [:]
            if expect(UInt8(ascii: "}")) { return finish(out) }
            while true {
                skip()
                guard let key = string(), expect(UInt8(ascii: ":")), let v = value(), out[key] == nil else { return nil }
                out[key] = v
                if expect(UInt8(ascii: "}")) { return finish(out) }
                guard expect(UInt8(ascii: ",")), out.count < 64 else { return nil }
            }
        }

        mutating func finish(_ o: [String: Value]) -> [String: Value]? {
            skip()
            return i == b.count ? o : nil
        }

        mutating func string() -> String? {
            guard i < b.count && b[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < b.count {
                let c = b[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(validating: out, as: UTF8.self) }
                if c < 0x20 { return nil }
                if c == UInt8(ascii: "\\") {
                    guard i < b.count else { return nil }
                    let e = b[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    default: return nil          // \u and the rest: never in an address or a protocol name
                    }
                } else {
                    out.append(c)
                }
                if out.count > 256 { return nil }
            }
            return nil
        }

        mutating func value() -> Value? {
            skip()
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "n"): return word("null") ? .null : nil
            case UInt8(ascii: "t"): return word("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return word("false") ? .bool(false) : nil
            default:
                let start = i
                while i < b.count, "-+.eE0123456789".utf8.contains(b[i]) { i += 1 }
                guard i > start, i - start <= 32, let d = Double(String(decoding: b[start..<i], as: UTF8.self)), d.isFinite else { return nil }
                return .number(d)
            }
        }

        mutating func word(_ w: String) -> Bool {
            let u = Array(w.utf8)
            guard b.count - i >= u.count, Array(b[i..<i + u.count]) == u else { return false }
            i += u.count
            return true
        }
    }
}
