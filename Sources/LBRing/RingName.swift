import Glibc

/// `NAME:K` — ring K of the group NAME.
public struct RingName: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var group: String
    public var index: Int

    public init(group: String, index: Int) {
        self.group = group
        self.index = index
    }

    /// Parses `NAME:K`; the error says what is wrong.
    public init(parsing text: String) throws(RingNameError) {
        guard let colon = text.lastIndex(of: ":") else {
            throw RingNameError("'\(text)' is not a ring name; expected NAME:K, e.g. zeek:3")
        }
        let name = String(text[..<colon])
        let k = text[text.index(after: colon)...]
        if let problem = RingName.groupProblem(name) { throw RingNameError(problem) }
        guard let index = Int(k), index >= 0 else {
            throw RingNameError("'\(text)': the ring number after ':' must be 0 or more")
        }
        self.group = name
        self.index = index
    }

    public var description: String { "\(group):\(index)" }

    /// Group names become file names: 1 to 31 characters of A-Z a-z 0-9 _ . -
    public static func groupProblem(_ name: String) -> String? {
        if name.isEmpty || name.utf8.count > 31 { return "group name '\(name)' must have 1 to 31 characters" }
        if name == "." || name == ".." { return "group name '\(name)' is not allowed" }
        for c in name.utf8 {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2E || c == 0x2D
            if !ok { return "group name '\(name)' may contain only letters, digits, '_', '.' and '-'" }
        }
        return nil
    }
}

public struct RingNameError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Where lb puts its control sockets: `--run-dir`, else $LB_RUN_DIR, else /run/lb for root,
/// else $XDG_RUNTIME_DIR/lb, else /tmp/lb-UID.
public enum RunDirectory {
    public static func resolve(_ explicit: String?) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let env = getenv("LB_RUN_DIR"), env.pointee != 0 { return String(cString: env) }
        if geteuid() == 0 { return "/run/lb" }
        if let xdg = getenv("XDG_RUNTIME_DIR"), xdg.pointee != 0 { return String(cString: xdg) + "/lb" }
        return "/tmp/lb-\(geteuid())"
    }

    public static func socketPath(_ dir: String, group: String) -> String { "\(dir)/\(group).sock" }
}
