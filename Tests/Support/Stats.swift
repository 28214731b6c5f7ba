import Foundation

/// lb's JSON stats lines (its final report on stdout, or `lb stats --json`): one line per ring,
/// keyed by its name (the "interface" field), and the aggregate line (output_ring null).
public struct LBStats {
    public var rings: [String: [String: Any]] = [:]
    /// each ring's line as printed
    public var raw: [String: String] = [:]
    public var aggregate: [String: Any] = [:]

    /// `final`: the aggregate must be lb's final one ("final": true), else this throws.
    public init(_ text: String, final: Bool = true) throws {
        var found = false
        for line in text.split(separator: "\n") {
            guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if obj["output_ring"] is NSNull {
                if !final || obj["final"] as? Bool == true { aggregate = obj; found = true }
            } else if let name = obj["interface"] as? String {
                rings[name] = obj
                raw[name] = String(line)
            }
        }
        if !found { throw TestFailure("no \(final ? "final " : "")stats line for lb in:\n\(text)") }
    }

    /// The ring lines by name and the aggregate as "lb".
    public var byName: [String: [String: Any]] { rings.merging(["lb": aggregate]) { a, _ in a } }

    /// The aggregate line with the ring lines under "rings".
    public var withRings: [String: Any] { aggregate.merging(["rings": rings]) { a, _ in a } }

    public func int(_ ring: String, _ field: String) -> Int? { (rings[ring]?[field] as? NSNumber)?.intValue }
    public func double(_ ring: String, _ field: String) -> Double? { (rings[ring]?[field] as? NSNumber)?.doubleValue }
    public func isNull(_ ring: String, _ field: String) -> Bool { rings[ring]?[field] is NSNull }
}

extension Dictionary where Key == String, Value == Any {
    /// The number at a path of keys into nested objects, 0 when absent.
    public func int(_ path: String...) -> Int {
        var v: Any? = self
        for k in path { v = (v as? [String: Any])?[k] }
        return (v as? Int) ?? (v as? NSNumber)?.intValue ?? 0
    }
}
