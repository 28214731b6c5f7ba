import ArgumentParser
import Glibc
import LBSys

/// `lb exec -- PROGRAM ARGS`: runs an unmodified pcap program with liblbpcap preloaded, so it
/// can open lb's rings as capture devices (`tcpdump -i lb:zeek:3`, `tshark -i lbtap:zeek:3`).
struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pcap program (tcpdump, tshark, zeek, suricata, ...) so it can capture from lb's rings.",
        discussion: """
            lb exec -- tcpdump -i lb:zeek:3 -w part3.pcap       consume ring zeek:3
            lb exec -- tshark -i lbtap:zeek:3                    watch it without consuming it
            lb exec -- tcpdump -D                                list the rings of running lbs

            liblbpcap.so is preloaded (LD_PRELOAD): lb:NAME:K and lbtap:NAME:K become devices of the
            system's libpcap; every other device and every file is the real libpcap's. See
            docs/analyzers.md for Zeek, Suricata and the others.
            """)

    @Option(help: "Directory of lb's control sockets (as given to lb); sets LB_RUN_DIR.")
    var runDir: String?

    @Option(help: "Wait up to SECS seconds for lb to serve a ring when the program opens it (LBPCAP_WAIT; default 0: fail at once).")
    var wait: Double?

    @Option(help: "The liblbpcap.so to preload (default: $LBPCAP_LIBRARY, beside lb, or lb's ../lib).")
    var library: String?

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        var argv = command
        if argv.first == "--" { argv.removeFirst() }
        guard let program = argv.first else { throw ValidationError("give the program to run after --, e.g. lb exec -- tcpdump -i lb:zeek:0") }
        guard let lib = Self.findLibrary(library) else {
            try? printError("lb exec: liblbpcap.so not found (looked beside lb and in lb's ../lib); build it with scripts/setup or pass --library")
            throw ExitCode(1)
        }
        guard let path = Self.resolve(program) else {
            try? printError("lb exec: \(program): command not found")
            throw ExitCode(127)
        }
        if let why = Self.preloadIgnored(path) { try? printError("lb exec: warning: \(path) \(why): LD_PRELOAD will not take (see docs/analyzers.md)") }
        let old = getenv("LD_PRELOAD").map { String(cString: $0) } ?? ""
        setenv("LD_PRELOAD", old.isEmpty ? lib : lib + ":" + old, 1)
        if let runDir { setenv("LB_RUN_DIR", runDir, 1) }
        if let wait { setenv("LBPCAP_WAIT", String(wait), 1) }
        let cargs = argv.map { strdup($0) } + [nil]
        execv(path, cargs)
        let e = errno
        try? printError("lb exec: \(path): \(String(cString: strerror(e)))")
        throw ExitCode(126)
    }

    /// --library, $LBPCAP_LIBRARY, beside the lb executable (also the release build's when lb is
    /// a debug build), or lb's ../lib (an install).
    static func findLibrary(_ explicit: String?) -> String? {
        if let explicit { return access(explicit, R_OK) == 0 ? absolute(explicit) : nil }
        if let env = getenv("LBPCAP_LIBRARY"), env.pointee != 0 { return String(cString: env) }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let dir = String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
        let parent = String(dir[..<(dir.lastIndex(of: "/") ?? dir.endIndex)])
        for c in [dir + "/liblbpcap.so", parent + "/release/liblbpcap.so", parent + "/lib/liblbpcap.so"] where access(c, R_OK) == 0 {
            return c
        }
        return nil
    }

    static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return p }
        return String(cString: buf) + "/" + p
    }

    /// PROGRAM as execvp would find it.
    static func resolve(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let c = "\(dir.isEmpty ? "." : String(dir))/\(program)"
            if access(c, X_OK) == 0 { return c }
        }
        return nil
    }

    /// Why the dynamic linker would ignore LD_PRELOAD for this program, or nil: set-user-ID or
    /// file capabilities (secure mode), or no dynamic linker at all (a static binary).
    static func preloadIgnored(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if st.st_mode & (S_ISUID | S_ISGID) != 0 { return "is set-user-ID or set-group-ID" }
        if Sys.hasXattr(path, "security.capability") { return "has file capabilities (setcap)" }
        if !ELFCheck.hasInterpreter(path) { return "is statically linked" }
        return nil
    }
}

/// Reads just enough of an ELF file to tell whether it names a dynamic linker (PT_INTERP).
enum ELFCheck {
    static func hasInterpreter(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var h = [UInt8](repeating: 0, count: 64)
        guard pread(fd, &h, 64, 0) == 64, h[0] == 0x7F, h[1] == 0x45, h[2] == 0x4C, h[3] == 0x46, h[4] == 2, h[5] == 1 else {
            return true      // not a 64-bit little-endian ELF (a script, say): nothing to say
        }
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u64(_ b: [UInt8], _ o: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[o + $1]) << (8 * $1) } }
        let phoff = u64(h, 32), phentsize = u16(h, 54), phnum = u16(h, 56)
        guard phentsize >= 4, phnum > 0, phnum < 256 else { return true }
        var ph = [UInt8](repeating: 0, count: phentsize * phnum)
        guard pread(fd, &ph, ph.count, off_t(phoff)) == ph.count else { return true }
        for i in 0..<phnum where u16(ph, i * phentsize) == 3 { return true }   // PT_INTERP
        return false
    }
}
