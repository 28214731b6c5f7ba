// swift-tools-version:6.1
import PackageDescription

// lb's benchmarks: one package beside the root one (so the root build stays light), one entry
// point (bench/bench NAME); bench/README.md has what each measures and the figures.
//
//   lb-bench   the pinned two-thread benchmark: (a) 64-byte UDP, (b) a real trace mix, (c) VXLAN,
//              for lb and for the C yardstick (yardstick/), with mallocs per packet; run.sh runs it
//   DataPath   the same data path under ordo-one/benchmark (`swift package benchmark`)
//
// The root package is a path dependency; its identity is its folder's name, which differs
// between work trees, so it is computed here.
let rootIdentity: String = {
    let file = #filePath
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)   // "Package.swift", "bench"
    return String(parts.last ?? "lb").lowercased()
}()

let package = Package(
    name: "lb-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/ordo-one/malloc-interposer", exact: "1.6.1"),
    ],
    targets: [
        .target(
            name: "BenchKit",
            dependencies: [
                .product(name: "LBCore", package: rootIdentity),
                .product(name: "LBRing", package: rootIdentity),
                .product(name: "LBBroker", package: rootIdentity),
            ]),
        .executableTarget(
            name: "lb-bench",
            dependencies: [
                "BenchKit",
                .product(name: "LBCore", package: rootIdentity),
                .product(name: "LBRing", package: rootIdentity),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]),
        // lb flowlog's connection tracking on one core, and its memory per connection (bench/flowlog/run.sh)
        .executableTarget(
            name: "flowlog-bench",
            dependencies: [
                .product(name: "LBFlow", package: rootIdentity),
                .product(name: "LBCore", package: rootIdentity),
            ]),
        // what a shunted packet costs against a delivered one, and a table of 1,000,000 flows (bench/shunt.sh)
        .executableTarget(
            name: "shunt-bench",
            dependencies: [
                "BenchKit",
                .product(name: "LBBroker", package: rootIdentity),
                .product(name: "LBCore", package: rootIdentity),
                .product(name: "LBRing", package: rootIdentity),
            ]),
        // what a group's filter, slicing and the tenant tag add per packet (bench/policy.sh)
        .executableTarget(
            name: "policy-bench",
            dependencies: [
                "BenchKit",
                .product(name: "LBBroker", package: rootIdentity),
                .product(name: "LBCore", package: rootIdentity),
            ]),
        // the share of flows that move when a worker fails and returns (bench/failover.sh)
        .executableTarget(
            name: "failover-share",
            dependencies: [.product(name: "LBBroker", package: rootIdentity)]),
        .executableTarget(
            name: "DataPath",
            dependencies: [
                "BenchKit",
                .product(name: "LBRing", package: rootIdentity),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/DataPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
