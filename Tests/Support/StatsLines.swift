import Foundation

/// lb's JSON stats lines (-o, `lb stats --json`) read back: one object per ring, by ring name,
/// and lb's own line (the one with `output_ring: null`).
public struct StatsLines {
    public var rings: [String: [String: Any]] = [:]
    /// each ring's line as lb printed it
    public var raw: [String: String] = [:]
    /// lb's line (the last one, or the final one with `finalOnly`)
    public var lb: [String: Any]? = nil

    public init(_ text: String, finalOnly: Bool = false) throws {
        for line in text.split(separator: "\n") {
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if o["output_ring"] is NSNull {
                if !finalOnly || o["final"] as? Bool == true { lb = o }
            } else if let name = o["interface"] as? String {
                rings[name] = o
                raw[name] = String(line)
            }
        }
    }
}
