import ArgumentParser

/// lb's version: the ring protocol's (LB_RING_VERSION) major, then the feature level.
let lbVersion = "1.15.0"

@main
struct LB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lb",
        abstract: "Flow load balancer and packet broker: splits traffic over analyzer workers, flow by flow.",
        discussion: """
            lb -i pcap:trace.pcap -p zeek:4        split a capture over 4 consumers (lb cat zeek:K ...)
            lb cat zeek:3 -w part3.pcap            write what ring zeek:3 gets as pcap
            lb exec -- tcpdump -i lb:zeek:3        a pcap program reads ring zeek:3 itself (liblbpcap)
            """,
        version: lbVersion,
        subcommands: [Run.self, Cat.self, Exec.self, Gen.self, FlowLog.self, Tap.self, Stats.self, Check.self, Shunt.self],
        defaultSubcommand: Run.self)
}
