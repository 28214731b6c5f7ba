import CLBShim
import Glibc
import LBSys
import Synchronization
import Testing

/// Futexes, eventfds, threads and clocks: who wakes whom, and what the calls report. A wait
/// that is never woken would hang the test, so each wait here has an event that ends it.
@Suite struct WaitTests {
    /// A word another thread sleeps on: it wakes when the word changes and is woken, and a
    /// wait on a word that already differs returns at once (an infinite timeout would hang).
    @Test func futexWakesAWaiter() {
        let word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        defer { word.deallocate() }
        word.initialize(to: 0)
        Sys.futexWait(word, expected: 1, timeoutNanos: -1)        // the word is 0: returns at once
        Sys.futexWait(word, expected: 0, timeoutNanos: 1_000_000)  // nobody wakes it: the timeout ends it
        let ready = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        ready.initialize(to: Atomic(0))
        defer { ready.deallocate() }
        let w = UInt(bitPattern: word), r = UInt(bitPattern: ready)
        let waiter = Threads.spawn("waiter") {
            let word = UnsafeMutablePointer<UInt32>(bitPattern: w)!
            let ready = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: r)!
            ready.pointee.store(1, ordering: .sequentiallyConsistent)
            // sleeps until the word is 1 and futexWake runs (spurious returns loop)
            while UnsafeMutablePointer<Atomic<UInt32>>(OpaquePointer(word)).pointee.load(ordering: .acquiring) == 0 {
                Sys.futexWait(word, expected: 0, timeoutNanos: -1)
            }
        }
        while ready.pointee.load(ordering: .sequentiallyConsistent) == 0 { sched_yield() }
        UnsafeMutablePointer<Atomic<UInt32>>(OpaquePointer(word)).pointee.store(1, ordering: .releasing)
        Sys.futexWake(word)
        Threads.join(waiter)
        #expect(word.pointee == 1)
    }

    @Test func eventfdCountsRingsAndNeverBlocks() throws {
        let fd = try Sys.eventfd()
        defer { Sys.close(fd) }
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        var value: UInt64 = 0
        #expect(read(fd, &value, 8) == -1 && errno == EAGAIN)        // nothing rung yet
        #expect(!Sys.readable(fd))
        Sys.ring(eventfd: fd)
        Sys.ring(eventfd: fd)
        Sys.ring(eventfd: fd)
        #expect(Sys.readable(fd))
        #expect(read(fd, &value, 8) == 8 && value == 3)
        #expect(!Sys.readable(fd))
    }

    /// "Cpus_allowed_list" of /proc/thread-self/status: the CPUs the calling thread may run on.
    static func allowedCPUs() -> String {
        let status = Sys.readSmallFile("/proc/thread-self/status", limit: 1 << 16) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") } ?? ""
        return String(line.dropFirst("Cpus_allowed_list:".count)).trimmingWhitespace
    }

    @Test func threadsHaveTheirNamesAndCanBePinned() throws {
        let box = Mutex<[String]>([])
        let t = Threads.spawn("lb-test-worker") {
            let comm = Sys.readSmallFile("/proc/thread-self/comm")?.trimmingWhitespace ?? ""
            box.withLock { $0.append(comm) }
        }
        Threads.join(t)
        #expect(box.withLock { $0 } == ["lb-test-worker"])
        // pinning: to a CPU this process may use, and not to one that does not exist
        let first = Self.allowedCPUs().prefix { $0.isNumber }
        let cpu = Int(first) ?? 0
        let pinned = Threads.spawn("pinned") {
            var out: [String] = []
            do { try Threads.pin(cpu: cpu); out.append(WaitTests.allowedCPUs()) } catch { out.append("\(error)") }
            do throws(SysError) { try Threads.pin(cpu: 100_000); out.append("pinned to 100000") } catch { out.append("errno \(error.code)") }
            box.withLock { $0 = out }
        }
        Threads.join(pinned)
        #expect(box.withLock { $0 } == ["\(cpu)", "errno \(EINVAL)"])
    }

    @Test func clocks() {
        // CLOCK_REALTIME agrees with time(2); CLOCK_MONOTONIC never goes back
        let before = UInt64(time(nil))
        let wall = Sys.wallNanos() / 1_000_000_000
        let after = UInt64(time(nil))
        #expect(wall >= before && wall <= after)
        var last = Sys.monoNanos()
        for _ in 0..<10_000 {
            let now = Sys.monoNanos()
            #expect(now >= last)
            last = now
        }
        #expect(Sys.pid() == getpid())
    }

    @Test func interfacesUsersAndNamespaces() throws {
        #expect(Sys.interfaceIndex("lo") == Int32(if_nametoindex("lo")) && Sys.interfaceIndex("lo") != nil)
        #expect(Sys.interfaceIndex("no-such-if0") == nil)
        let lo = try Sys.interface("lo")
        #expect(lo.index == Sys.interfaceIndex("lo") && lo.mtu > 0 && !lo.isEthernet)
        #expect(throws: SysError("interface", ENODEV)) { _ = try Sys.interface("no-such-if0") }
        #expect(Sys.interfaceCounter("no-such-if0", "rx_packets") == 0)
        var st = stat()
        #expect(stat("/proc/self/ns/net", &st) == 0 && Sys.netnsInode() == UInt64(st.st_ino))
        #expect(Sys.memAvailable().map { $0 > 0 } == true)
        #expect(Sys.lookupUser("root")?.uid == 0 && Sys.lookupUser("root")?.gid == 0)
        #expect(Sys.lookupUser("no-such-user-lb") == nil)
        #expect(Sys.lookupUser("54321")?.uid == 54321)
        #expect(" \t value \r\n".trimmingWhitespace == "value" && "".trimmingWhitespace == "")
    }
}
