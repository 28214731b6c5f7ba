import CLBShim
import Glibc

/// Dedicated threads for the data path and the control plane (pthreads, not Swift tasks:
/// the packet path must never hop executors).
public enum Threads {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    /// Starts a joinable thread running `body`.
    public static func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.name.withCString { lb_shim_set_thread_name($0) }
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return tid
    }

    public static func join(_ t: pthread_t) { pthread_join(t, nil) }

    /// Pins the calling thread to `cpu`.
    public static func pin(cpu: Int) throws(SysError) {
        guard lb_shim_pin_cpu(Int32(cpu)) == 0 else { throw SysError("pthread_setaffinity_np(cpu \(cpu))") }
    }

    public static func setName(_ name: String) { name.withCString { lb_shim_set_thread_name($0) } }
}
