/// A value of the status snapshot as a tree: what `StatusEncoder` makes of any `Encodable`, and
/// what every view renders (JSON lines, Prometheus, text). Objects keep their keys in the order
/// the type declares them; a `nil` optional is kept as `.null` (JSON shows it, Prometheus
/// leaves the sample out).
public indirect enum StatusValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([StatusValue])
    case object([(String, StatusValue)])

    public static func == (a: StatusValue, b: StatusValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.int(x), .int(y)): x == y
        case let (.uint(x), .uint(y)): x == y
        case let (.double(x), .double(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// The member `key` of an object (nil for anything else).
    public subscript(key: String) -> StatusValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    /// A number as a Double (Bool as 0/1); nil for null, strings, arrays and objects.
    public var number: Double? {
        switch self {
        case .bool(let b): b ? 1 : 0
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    /// Every leaf (number, bool, string or null) with its path of keys; array elements are not
    /// descended into (the views handle the ring list themselves).
    public func leaves(prefix: [String] = []) -> [(path: [String], value: StatusValue)] {
        switch self {
        case .object(let members): members.flatMap { $0.1.leaves(prefix: prefix + [$0.0]) }
        case .array: []
        default: [(prefix, self)]
        }
    }

    /// JSON text, keys in order. Doubles get up to 6 decimals (trailing zeros dropped).
    public var json: String {
        var out = ""
        write(json: &out)
        return out
    }

    func write(json out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let v): out += String(v)
        case .uint(let v): out += String(v)
        case .double(let v): out += StatusValue.decimal(v)
        case .string(let s): out += JSONText.quote(s)
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(json: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += "," }
                out += JSONText.quote(k) + ":"
                v.write(json: &out)
            }
            out += "}"
        }
    }

    /// A finite double with at most 6 decimals and no trailing zeros (but one decimal kept, so
    /// a reader sees a float); not finite: 0.
    static func decimal(_ v: Double) -> String {
        var s = JSONText.fixed(v, 6)
        guard s.contains(".") else { return s }
        while s.hasSuffix("0") && !s.hasSuffix(".0") { s.removeLast() }
        return s
    }
}
