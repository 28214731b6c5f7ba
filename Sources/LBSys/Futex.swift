import CLBShim
import Glibc

extension Sys {
    /// Sleeps while the 32-bit word at `addr` equals `expected`, at most `timeoutNanos`.
    /// Returns when woken, on timeout, on a signal, or at once if the word differs.
    @inline(__always)
    public static func futexWait(_ addr: UnsafeRawPointer, expected: UInt32, timeoutNanos: Int64) {
        _ = lb_shim_futex_wait(addr.assumingMemoryBound(to: UInt32.self), expected, timeoutNanos)
    }

    @inline(__always)
    public static func futexWake(_ addr: UnsafeRawPointer) {
        _ = lb_shim_futex_wake(addr.assumingMemoryBound(to: UInt32.self), Int32.max)
    }
}

extension Sys {
    /// A non-blocking, close-on-exec eventfd with counter 0.
    public static func eventfd() throws(SysError) -> Int32 {
        let fd = lb_shim_eventfd()
        guard fd >= 0 else { throw SysError("eventfd") }
        return fd
    }

    /// Adds 1 to an eventfd (wakes whoever polls it). Never blocks.
    @inline(__always)
    public static func ring(eventfd fd: Int32) { _ = lb_shim_eventfd_ring(fd) }
}
