import Glibc

/// An errno value from a failed system call, with the name of the call.
public struct SysError: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int32
    public let call: String

    public init(_ call: String, _ code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    public var description: String { "\(call): \(String(cString: strerror(code)))" }

    public static func == (a: SysError, b: SysError) -> Bool { a.code == b.code }
}

/// Retries a call while it fails with EINTR.
@inline(__always)
func retrying<T: FixedWidthInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r == -1 && errno == EINTR { continue }
        return r
    }
}
