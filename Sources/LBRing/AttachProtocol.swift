import CLBRing

/// The messages on the control socket (struct lb_attach_request / lb_attach_reply).
public enum AttachProtocol {
    public static let requestSize = MemoryLayout<lb_attach_request>.size
    public static let replySize = MemoryLayout<lb_attach_reply>.size

    public enum Mode: UInt16, Sendable {
        case consumer = 1
        case tap = 2
        /// lb answers with its stats (JSON lines) after the reply, then closes
        case stats = 3
        /// a shunt request: its text follows the request in the same message (`encode(_:payload:)`)
        case shunt = 4
    }

    /// The longest text a shunt request may carry.
    public static let maxPayload = 1024

    public struct Request: Equatable, Sendable {
        public var group: String
        public var ring: Int
        public var mode: Mode
        /// a consumer that also wants the ring's doorbell (LB_ATTACH_DOORBELL)
        public var doorbell: Bool
        /// a consumer that takes shunt end reports (LB_ATTACH_SHUNT_REPORTS)
        public var shuntReports: Bool
        public init(group: String, ring: Int, mode: Mode, doorbell: Bool = false, shuntReports: Bool = false) {
            self.group = group; self.ring = ring; self.mode = mode; self.doorbell = doorbell; self.shuntReports = shuntReports
        }
    }

    public struct Reply: Equatable, Sendable {
        public var error: Int32
        public var message: String
        public var fdCount: Int
        public var dataSize: Int
        public var controlSize: Int
        public init(error: Int32, message: String, fdCount: Int = 0, dataSize: Int = 0, controlSize: Int = 0) {
            self.error = error; self.message = message; self.fdCount = fdCount
            self.dataSize = dataSize; self.controlSize = controlSize
        }
    }

    public static func encode(_ r: Request) -> [UInt8] {
        var m = lb_attach_request()
        m.magic = LB_ATTACH_MAGIC
        m.version = UInt16(LB_RING_VERSION)
        m.mode = r.mode.rawValue
        m.ring = UInt32(clamping: r.ring)
        m.flags = (r.doorbell ? LB_ATTACH_DOORBELL : 0) | (r.shuntReports ? LB_ATTACH_SHUNT_REPORTS : 0)
        withUnsafeMutableBytes(of: &m.group) { dst in
            for (i, b) in r.group.utf8.prefix(Int(LB_GROUP_NAME_MAX) - 1).enumerated() { dst[i] = b }
        }
        return withUnsafeBytes(of: &m) { Array($0) }
    }

    /// A request with text after it (a shunt request).
    public static func encode(_ r: Request, payload: String) -> [UInt8] {
        encode(r) + Array(payload.utf8.prefix(maxPayload))
    }

    /// Parses a request and the text after it: only a shunt request may carry text (at most
    /// `maxPayload` bytes of UTF-8); nil for anything else that is not exactly a request.
    public static func decodeRequest(withPayload bytes: UnsafeRawBufferPointer) -> (Request, String)? {
        guard bytes.count >= requestSize else { return nil }
        guard let r = decodeRequest(UnsafeRawBufferPointer(rebasing: bytes[..<requestSize])) else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[requestSize...])
        guard rest.isEmpty || (r.mode == .shunt && rest.count <= maxPayload) else { return nil }
        guard let text = String(validating: rest, as: UTF8.self) else { return nil }
        return (r, text)
    }

    /// Parses a request; nil for anything that is not exactly a well-formed request.
    public static func decodeRequest(_ bytes: UnsafeRawBufferPointer) -> Request? {
        guard bytes.count == requestSize else { return nil }
        var m = lb_attach_request()
        withUnsafeMutableBytes(of: &m) { $0.copyMemory(from: bytes) }
        guard m.magic == LB_ATTACH_MAGIC, m.version == UInt16(LB_RING_VERSION),
              let mode = Mode(rawValue: m.mode) else { return nil }
        let group = withUnsafeBytes(of: &m.group) { cString($0) }
        guard m.flags & ~(LB_ATTACH_DOORBELL | LB_ATTACH_SHUNT_REPORTS) == 0 else { return nil }
        return Request(group: group, ring: Int(m.ring), mode: mode, doorbell: m.flags & LB_ATTACH_DOORBELL != 0,
                       shuntReports: m.flags & LB_ATTACH_SHUNT_REPORTS != 0)
    }

    public static func encode(_ r: Reply) -> [UInt8] {
        var m = lb_attach_reply()
        m.magic = LB_ATTACH_MAGIC
        m.version = UInt16(LB_RING_VERSION)
        m.error = r.error
        m.fd_count = UInt32(r.fdCount)
        m.data_size = UInt64(r.dataSize)
        m.control_size = UInt64(r.controlSize)
        withUnsafeMutableBytes(of: &m.message) { dst in
            for (i, b) in r.message.utf8.prefix(dst.count - 1).enumerated() { dst[i] = b }
        }
        return withUnsafeBytes(of: &m) { Array($0) }
    }

    public static func decodeReply(_ bytes: UnsafeRawBufferPointer) -> Reply? {
        guard bytes.count == replySize else { return nil }
        var m = lb_attach_reply()
        withUnsafeMutableBytes(of: &m) { $0.copyMemory(from: bytes) }
        guard m.magic == LB_ATTACH_MAGIC, m.version == UInt16(LB_RING_VERSION) else { return nil }
        let message = withUnsafeBytes(of: &m.message) { cString($0) }
        return Reply(error: m.error, message: message, fdCount: Int(m.fd_count), dataSize: Int(m.data_size),
                     controlSize: Int(m.control_size))
    }

    static func cString(_ b: UnsafeRawBufferPointer) -> String {
        let n = b.firstIndex(of: 0) ?? b.count
        return String(decoding: b[..<n], as: UTF8.self)
    }
}
