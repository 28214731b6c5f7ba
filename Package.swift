// swift-tools-version:6.1
import PackageDescription

// The data path, from the wire to the analyzers, reads top to bottom:
//   LBCore    parse, decapsulate, hash (no syscalls, no Foundation)
//   LBRing    the shared-memory rings (the one module with Unsafe pointers into shared memory)
//   LBBroker  ingress sources, dispatch into rings, control socket, stats
//   LBWorker  the consumer side of a ring, for analyzers
//   lb        the executable: one file per subcommand
// Sources/CLBPcap (liblbpcap.so, lb's rings as libpcap devices) is plain C that must not load
// the Swift runtime into the analyzers it is preloaded into, so Sources/CLBPcap/build.sh
// compiles it (scripts/setup runs it) rather than SwiftPM, which links every product with it.
let package = Package(
    name: "lb",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lb", targets: ["lb"]),
        .library(name: "LBCore", targets: ["LBCore"]),
        .library(name: "LBRing", targets: ["LBRing"]),
        .library(name: "LBBroker", targets: ["LBBroker"]),
        .library(name: "LBWorker", targets: ["LBWorker"]),
        .library(name: "LBGen", targets: ["LBGen"]),
        // liblbworker.so: the worker library's C ABI (lb_worker.h) for C/C++ analyzers
        .library(name: "lbworker", type: .dynamic, targets: ["LBWorkerC"]),
        .library(name: "LBFlow", targets: ["LBFlow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        // lb --config FILE (docs/configuration.md)
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .target(name: "CLBRing"),
        .target(name: "CLBShim"),
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // libbpf + libxdp: lb's XDP program, AF_XDP sockets, TPACKET_V3 (live ingress)
        .target(name: "CLBXdp"),
        .target(name: "LBSys", dependencies: ["CLBShim"]),
        .target(name: "LBCore"),
        .target(name: "LBGen", dependencies: ["LBCore"]),
        .target(name: "LBRing", dependencies: ["CLBRing", "CLBShim", "LBSys", "LBCore"]),
        .target(name: "LBBroker", dependencies: ["LBCore", "LBRing", "LBSys", "CLBShim", "CLBXdp", "CPcap"]),
        .target(name: "LBWorker", dependencies: ["LBRing", "LBSys", "LBCore"]),
        // forwarded groups: threads of lb that consume a group's rings and send to other hosts or ports
        .target(name: "LBForward", dependencies: ["LBWorker", "LBRing", "LBSys", "LBCore", "CLBRing", "CLBXdp"]),
        .target(name: "CLBWorker", dependencies: ["CLBRing"]),
        .target(name: "LBWorkerC", dependencies: ["LBWorker", "CLBWorker", "CLBRing", "LBRing", "LBSys"]),
        .target(name: "LBFlow"),
        .executableTarget(
            name: "lb",
            dependencies: [
                "LBBroker", "LBWorker", "LBCore", "LBSys", "LBGen", "CPcap", "LBFlow", "LBForward",
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "LBTestSupport", dependencies: ["LBCore", "CLBShim"], path: "Tests/Support"),
        .testTarget(name: "LBCoreTests", dependencies: ["LBCore", "LBGen", "LBTestSupport"]),
        .testTarget(name: "LBSysTests", dependencies: ["LBSys", "CLBShim", "LBTestSupport"]),
        .testTarget(name: "LBGenTests", dependencies: ["LBGen", "LBCore", "LBTestSupport"]),
        .testTarget(name: "LBRingTests", dependencies: ["LBRing", "LBSys", "LBCore", "CLBRing"]),
        .testTarget(name: "LBBrokerTests", dependencies: ["LBBroker", "LBWorker", "LBRing", "LBCore", "LBGen", "LBSys", "CLBRing", "CLBXdp", "LBTestSupport"]),
        .testTarget(name: "WorkerTests", dependencies: ["LBWorker", "LBBroker", "LBRing", "LBCore", "LBGen", "LBSys", "CLBRing", "LBTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["lb", "LBCore", "LBGen", "LBTestSupport"]),
        .testTarget(name: "OpsTests", dependencies: ["lb", "LBBroker", "LBCore", "LBGen", "LBWorker", "LBRing", "LBSys", "CLBRing", "LBTestSupport"]),
        .testTarget(name: "UDPTests", dependencies: ["lb", "LBBroker", "LBCore", "LBGen", "LBSys", "LBTestSupport"]),
        .testTarget(name: "FlowTests", dependencies: ["lb", "LBFlow", "LBGen", "LBCore", "LBTestSupport"]),
    ]
)
