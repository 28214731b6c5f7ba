/// A UDP port that carries a tunnel.
@frozen
public struct TunnelPort: Hashable, Sendable {
    public var port: UInt16
    public var kind: EncapKind
    public init(_ port: UInt16, _ kind: EncapKind) { self.port = port; self.kind = kind }
}

/// What the decoder removes and how it hashes.
public struct DecodeConfig: Sendable {
    /// UDP ports that carry tunnels (matched on the destination port, then the source port)
    public var tunnelPorts: [TunnelPort]
    /// tunnels removed at most; a deeper packet is delivered at this depth and counted
    public var maxDepth: Int
    /// deliver the original frame instead of the inner packet (`--decap keep`)
    public var keepEncapsulation: Bool
    public var tuple: TupleMode
    /// put the outermost VLAN id into the hash key
    public var hashVLAN: Bool
    /// put the innermost VNI / GRE key / TEID into the hash key
    public var hashVNI: Bool
    public var seeds: HashSeeds
    /// also recognize Teredo on any UDP port by its shape (as Zeek does), not only on 3544
    public var teredoAnyPort = true

    public static let defaultTunnelPorts: [TunnelPort] = [
        TunnelPort(4789, .vxlan), TunnelPort(6081, .geneve), TunnelPort(2152, .gtpu),
        TunnelPort(3544, .teredo), TunnelPort(5072, .ayiya), TunnelPort(4754, .greUDP),
    ]

    public init(tunnelPorts: [TunnelPort] = DecodeConfig.defaultTunnelPorts, maxDepth: Int = 8,
                keepEncapsulation: Bool = false, tuple: TupleMode = .five, hashVLAN: Bool = false,
                hashVNI: Bool = false, seeds: HashSeeds = .standard) {
        self.tunnelPorts = tunnelPorts
        self.maxDepth = maxDepth
        self.keepEncapsulation = keepEncapsulation
        self.tuple = tuple
        self.hashVLAN = hashVLAN
        self.hashVNI = hashVNI
        self.seeds = seeds
    }
}
