// Zeek's TCP analysis, as far as conn.log and capture_loss.log see it: the endpoint state
// machine (TCPSessionAdapter::UpdateStateMachine), history letters (update_history), sequence
// bookkeeping (init_endpoint, update_last_seq, update_ack_seq, Size), the reassembler's
// gap accounting (TCP_Reassembler / DataBlockList::Trim) and the close logic
// (ConnectionClosed, timers). Function names follow Zeek's so the two can be read side by side.

extension ConnTable {
    @inline(__always) static func isHandshake(_ s: EndpointState) -> Bool {
        s == .inactive || s == .synSent || s == .synAckSent
    }

    /// TCP_Endpoint::SetState, with the inactivity timeout switching to tcp_inactivity_timeout
    /// when the handshake ends.
    @inline(__always)
    func setState(_ c: inout Conn, _ e: inout Endpoint, peerState: EndpointState, _ s: EndpointState) {
        guard s != e.state else { return }
        if !Self.isHandshake(s) && Self.isHandshake(e.state) && Self.isHandshake(peerState) {
            c.inactivityTimeout = config.tcpInactivity
        }
        e.prevState = e.state
        e.state = s
    }

    /// TCPSessionAdapter::IsReuse for a packet of an existing connection.
    func isReuse(_ c: Conn, _ p: FlowPacket) -> Bool {
        let f = p.flags
        guard p.tcpHeaderUsable, f & TCPFlag.syn != 0 else { return false }
        var connOrig = c.orig
        if f & TCPFlag.ack != 0 {
            if c.orig.state != .inactive { return false }
            connOrig = c.resp
        }
        let isClosed = c.orig.didClose || c.resp.didClose
        if !isClosed {
            if p.seq == connOrig.startSeq { return false }
            if f & TCPFlag.ack == 0 && connOrig.state == .synAckSent && c.resp.state == .inactive
                && p.seq == c.resp.startSeq {
                return false
            }
        }
        return true
    }

    static func relativeSeq(_ e: Endpoint, _ cur: UInt32, _ last: UInt32, _ wraps0: UInt32, _ underflow: inout Bool) -> UInt64 {
        var wraps = wraps0
        let delta = seqDelta(cur, last)
        if delta < 0 {
            if wraps > 0 && cur > last { wraps -= 1 }
        } else if delta > 0 {
            if cur < last { wraps &+= 1 }
        }
        if wraps == 0 {
            let d = seqDelta(cur, e.startSeq)
            if d < 0 { underflow = true }
            return UInt64(bitPattern: Int64(d))
        }
        return e.relative(cur, wraps)
    }

    mutating func tcp(_ c: inout Conn, _ p: FlowPacket, isOrig isOrigIn: Bool) {
        var isOrig = isOrigIn
        if p.checksumOK && c.history.count == 1 && c.history[0] == UInt8(ascii: "H") {
            let f = p.flags
            if f & (TCPFlag.syn | TCPFlag.fin | TCPFlag.rst) == 0 && (p.payloadLength > 0 || f & TCPFlag.ack != 0) {
                // TCP_Endpoint::CheckHistory: an 'A' or 'D' while the history is just "H" (the
                // connection began with a SYN-ACK): the SYN was missed, flip (zeek/zeek#2191).
                // The history becomes "^h", the first packet counts as seen from both sides and
                // the connection as not partial (TCPSessionAdapter::FlipRoles); endpoint states
                // and the history masks stay as they are.
                c.flipRoles()
                c.history = History("^h")
                c.isPartial = false
                c.firstPacketSeen = 3
                isOrig = !isOrig          // (the packet counters move with the endpoints, zeek/zeek#5047)
            }
        }
        var ep = isOrig ? c.orig : c.resp
        var peer = isOrig ? c.resp : c.orig
        var flipped = false
        tcpPacket(&c, &ep, &peer, p, &flipped)
        if isOrig { c.orig = ep; c.resp = peer } else { c.resp = ep; c.orig = peer }
        if flipped {
            // the SYN/SYN-ACK reversal flip (is_orig of the endpoints already toggled)
            // ('^' was added where Zeek's Connection::FlipRoles adds it, after this packet's
            // letter; then both first packets count as seen: FlipRoles' swap, ORIG, and
            // CheckPIA_FirstPacket with the packet's original direction)
            c.flipRoles(mark: false)
            c.firstPacketSeen = 3
            isOrig = !isOrig
        }
        // conn-size analyzer (after the TCP analysis; not for packets with a bad checksum),
        // counted for the endpoint that sent the packet (zeek/zeek#5047)
        guard p.checksumOK else { return }
        if isOrig { c.orig.packets &+= 1; c.orig.ipBytes &+= UInt64(p.ipLength) }
        else { c.resp.packets &+= 1; c.resp.ipBytes &+= UInt64(p.ipLength) }
    }

    mutating func tcpPacket(_ c: inout Conn, _ ep: inout Endpoint, _ peer: inout Endpoint, _ p: FlowPacket, _ flipped: inout Bool) {
        if !p.checksumOK {
            c.scaled(UInt8(ascii: "C"), &ep.chkCount, &ep.chkThresh, isOrig: ep.isOrig)
            return
        }
        let f = p.flags
        let SYN = f & TCPFlag.syn != 0, FIN = f & TCPFlag.fin != 0
        let RST = f & TCPFlag.rst != 0, ACK = f & TCPFlag.ack != 0
        let len = p.payloadLength
        let baseSeq = p.seq, ackSeq = p.ack
        let t = p.ts

        // SetPartialStatus
        if ep.isOrig {
            if c.firstPacketSeen & 1 == 0 { c.isPartial = !SYN || ACK }
        } else if c.firstPacketSeen & 2 == 0 && !c.isPartial {
            c.isPartial = !SYN
        }

        var segLen = len
        if SYN { segLen += 1 }
        if FIN { segLen += 1 }
        if RST { segLen -= len }
        let seqOnePast = baseSeq &+ UInt32(truncatingIfNeeded: segLen)

        initEndpoint(&ep, SYN: SYN, first: baseSeq, last: seqOnePast)

        var underflow = false
        let relSeq = Self.relativeSeq(ep, baseSeq, ep.lastSeq, ep.seqWraps, &underflow)

        updateHistory(&c, &ep, f, relSeq, len)
        // update_window: only the zero-window history letter matters here
        if p.window == 0 && !RST && peer.state != .closed && ep.state != .reset {
            c.scaled(UInt8(ascii: "W"), &ep.win0Count, &ep.win0Thresh, isOrig: ep.isOrig)
        }

        if !ep.didClose || !peer.didClose { c.last = t }

        if FIN {
            ep.finCount &+= 1
            ep.finSeq = relSeq &+ UInt64(bitPattern: Int64(segLen))
        }
        if RST { ep.rstCount &+= 1 }

        var relAck: UInt64 = 0
        if ACK {
            if ep.isOrig && !c.seenFirstACK && (ep.state == .established || ep.state == .synSent) {
                c.seenFirstACK = true
            }
            if peer.state == .inactive {
                relAck = 1
                peer.startSeq = ackSeq &- 1
                peer.ackSeq = ackSeq &- 1
                peer.lastSeq = ackSeq &- 1
            } else {
                var ackUnderflow = false
                relAck = Self.relativeSeq(peer, ackSeq, peer.ackSeq, peer.ackWraps, &ackUnderflow)
                if ackUnderflow {
                    relAck = 0
                } else if !RST {
                    let d = seqDelta(ackSeq, peer.ackSeq)
                    if ackSeq == 0 && d > 1_048_576 {
                        // a broken ack, not a wrap onto 0
                    } else if d > 0 {
                        peer.updateAckSeq(ackSeq)
                    }
                }
            }
        }

        let deltaLast = updateLastSeq(&c, &ep, seqOnePast, SYN: SYN, FIN: FIN, RST: RST, len: len)

        var doClose = false, genEvent = false
        switch ep.state {
        case .inactive:
            updateInactiveState(&c, &ep, &peer, baseSeq: baseSeq, ackSeq: ackSeq, len: len, f: f, t: t,
                                doClose: &doClose, genEvent: &genEvent, flipped: &flipped)
        case .synSent, .synAckSent:
            if FIN {
                setState(&c, &ep, peerState: peer.state, .closed)
                doClose = true; genEvent = true
            }
            if RST {
                setState(&c, &ep, peerState: peer.state, .reset)
                c.isActive = false                 // ConnectionReset
                doClose = true
            }
        case .established, .partial:
            if SYN && ep.state == .partial && peer.state == .inactive && !ACK {
                setState(&c, &ep, peerState: peer.state, .synSent)
            }
            if FIN && !RST {
                setState(&c, &ep, peerState: peer.state, .closed)
                if peer.state == .reset && peer.prevState == .closed {
                    setState(&c, &peer, peerState: ep.state, .closed)
                }
                doClose = true; genEvent = true
            }
            if RST {
                setState(&c, &ep, peerState: peer.state, .reset)
                doClose = true
                if peer.state != .reset || peer.prevState != .established { c.isActive = false }
            }
        case .closed:
            _ = deltaLast
            if RST && peer.state != .closed {
                setState(&c, &ep, peerState: peer.state, .reset)
                if !ep.didClose { doClose = true }
            }
        case .reset:
            break
        }

        if ACK { ackReceived(&c, &peer, other: ep, relAck) }

        let relDataSeq = SYN ? relSeq &+ 1 : relSeq
        if len > 0 && !RST && !underflow {
            dataSent(&c, &ep, other: peer, seq: relDataSeq, len: len, captured: p.payloadCaptured)
        }
        checkEOF(&c, &ep, &peer)
        if doClose { connectionClosed(&c, &ep, &peer, genEvent: genEvent) }
        if !c.firstPacketSeenBoth(ep.isOrig) { c.markFirstPacketSeen(ep.isOrig) }
    }

    func initEndpoint(_ e: inout Endpoint, SYN: Bool, first: UInt32, last lastIn: UInt32) {
        var last = lastIn
        switch e.state {
        case .inactive:
            if SYN {
                e.ackSeq = first
                e.startSeq = first
            } else {
                e.ackSeq = first &- 1
                e.startSeq = first &- 1
                last = first
            }
            e.lastSeq = last
        case .synSent, .synAckSent:
            if SYN && first != e.startSeq {
                e.startSeq = first; e.ackSeq = first; e.lastSeq = last
            }
        case .established, .partial:
            if SYN {
                e.startSeq = first; e.ackSeq = first; e.lastSeq = last
            }
        case .reset:
            if SYN && e.prevState == .inactive {
                e.startSeq = first; e.ackSeq = first; e.lastSeq = last
            }
        case .closed:
            break
        }
    }

    func updateHistory(_ c: inout Conn, _ e: inout Endpoint, _ f: UInt8, _ relSeq: UInt64, _ len: Int) {
        let SYN = f & TCPFlag.syn != 0, FIN = f & TCPFlag.fin != 0, RST = f & TCPFlag.rst != 0
        let bits = (SYN ? 1 : 0) + (FIN ? 1 : 0) + (RST ? 1 : 0)
        let o = e.isOrig
        if bits > 1 {
            if FIN && RST { _ = c.checkHistory(0x08, UInt8(ascii: "I"), isOrig: o) }
            else { _ = c.checkHistory(0x40, UInt8(ascii: "Q"), isOrig: o) }
        } else if bits == 1 {
            if SYN {
                let code = f & TCPFlag.ack != 0 ? UInt8(ascii: "H") : UInt8(ascii: "S")
                if c.checkHistory(0x01, code, isOrig: o) && relSeq != e.histLastSYN {
                    c.addHistory(o ? code : code | 0x20)
                }
                e.histLastSYN = relSeq
            }
            if FIN {
                let at = relSeq &+ UInt64(len)
                if c.checkHistory(0x02, UInt8(ascii: "F"), isOrig: o) && at != e.histLastFIN {
                    c.addHistory(o ? UInt8(ascii: "F") : UInt8(ascii: "f"))
                }
                e.histLastFIN = at
            }
            if RST {
                if c.checkHistory(0x04, UInt8(ascii: "R"), isOrig: o) && relSeq != e.histLastRST {
                    c.addHistory(o ? UInt8(ascii: "R") : UInt8(ascii: "r"))
                }
                e.histLastRST = relSeq
            }
        } else {
            if len > 0 { _ = c.checkHistory(0x10, UInt8(ascii: "D"), isOrig: o) }
            else if f & TCPFlag.ack != 0 { _ = c.checkHistory(0x20, UInt8(ascii: "A"), isOrig: o) }
        }
    }

    /// inactivity.zeek's connection_established handler: longer timeouts for interactive ports.
    func connectionEstablished(_ c: inout Conn, origState: EndpointState) {
        var port = c.respP
        if origState == .inactive && !config.likelyServerPorts.tcp.contains(port)
            && config.likelyServerPorts.tcp.contains(c.origP) {
            port = c.origP
        }
        if let t = config.portInactivityTimeouts[port] { c.inactivityTimeout = t }
    }

    func updateLastSeq(_ c: inout Conn, _ e: inout Endpoint, _ last: UInt32, SYN: Bool, FIN: Bool, RST: Bool, len: Int) -> Int32 {
        let delta = seqDelta(last, e.lastSeq)
        if (SYN || RST) && (delta > 1_048_576 || delta < -1_048_576) {
            // untrusted
        } else if FIN && e.lastSeq == e.startSeq &+ 1 {
            e.updateLastSeq(last)
        } else if e.state == .reset {
            // don't trust sequence numbers after a RST
        } else if delta > 0 {
            e.updateLastSeq(last)
        } else if delta <= 0 && len > 0 {
            c.scaled(UInt8(ascii: "T"), &e.rxmtCount, &e.rxmtThresh, isOrig: e.isOrig)
        }
        return delta
    }

    func updateInactiveState(_ c: inout Conn, _ ep: inout Endpoint, _ peer: inout Endpoint, baseSeq: UInt32, ackSeq: UInt32,
                             len: Int, f: UInt8, t: UInt64, doClose: inout Bool, genEvent: inout Bool, flipped: inout Bool) {
        let SYN = f & TCPFlag.syn != 0, FIN = f & TCPFlag.fin != 0
        let RST = f & TCPFlag.rst != 0, ACK = f & TCPFlag.ack != 0
        if SYN {
            if ep.isOrig {
                setState(&c, &ep, peerState: peer.state, ACK ? .synAckSent : .synSent)
                if config.tcpAttemptDelay > 0 { c.attemptAt = t &+ config.tcpAttemptDelay }
            } else {
                if !ACK && peer.state == .synAckSent && baseSeq == ep.startSeq {
                    // a SYN/SYN-ACK reversal: flip the endpoints and establish the connection
                    c.isPartial = false
                    flipped = true
                    c.addHistory(UInt8(ascii: "^"))
                    ep.isOrig = true
                    peer.isOrig = false
                    setState(&c, &peer, peerState: ep.state, .established)
                }
                if peer.state == .synSent { setState(&c, &peer, peerState: ep.state, .established) }
                setState(&c, &ep, peerState: peer.state, .established)
                if peer.state != .partial { connectionEstablished(&c, origState: peer.isOrig ? peer.state : ep.state) }
            }
        }
        if FIN {
            setState(&c, &ep, peerState: peer.state, .closed)
            doClose = true; genEvent = true
        }
        if RST {
            setState(&c, &ep, peerState: peer.state, .reset)
            var isReject = false
            if ep.isOrig {
                if peer.state == .established { isReject = true }
            } else if peer.state == .synSent || peer.state == .synAckSent {
                isReject = true
            }
            doClose = true
            genEvent = !isReject
        }
        if ep.state == .inactive {
            if !ep.isOrig && len == 0 && peer.state == .synSent {
                // an ack of the initial SYN before the SYN-ACK: not a partial connection
            } else if ACK && peer.state == .established {
                setState(&c, &ep, peerState: peer.state, .established)
                c.isPartial = false
                c.markFirstPacketSeen(ep.isOrig)
            } else {
                setState(&c, &ep, peerState: peer.state, .partial)
            }
        }
    }

    // MARK: Reassembler

    static func isClean(_ a: Endpoint) -> Bool {
        a.state == .established || (a.state == .closed && a.prevState == .established)
    }

    /// TCP_Reassembler::AckReceived on `e` (whose data is acknowledged) from `other`.
    mutating func ackReceived(_ c: inout Conn, _ e: inout Endpoint, other: Endpoint, _ ack: UInt64) {
        var seq = ack
        if e.finCount > 0 && seq >= e.finSeq { seq = e.finSeq &- 1 }
        if seq <= e.trimSeq { return }
        let testActive = !e.skipDeliveries && e.state == .established && other.state == .established
        let missing = trim(&c, &e, other: other, to: seq)
        if testActive {
            loss.acks &+= 1
            if missing > 0 { loss.gaps &+= 1 }
        }
        var o = other
        checkEOF(&c, &e, &o)
    }

    /// DataBlockList::Trim with Undelivered; returns the bytes found missing.
    func trim(_ c: inout Conn, _ e: inout Endpoint, other: Endpoint, to seq: UInt64) -> UInt64 {
        var missing: UInt64 = 0
        if !e.blocks.isEmpty {
            if e.blocks.seq(0) > e.lastReassem { missing &+= e.blocks.seq(0) - e.lastReassem }
        } else if seq > e.lastReassem {
            missing &+= seq - e.lastReassem
        }
        if seq > e.lastReassem { undelivered(&c, &e, other: other, upTo: seq) }
        while !e.blocks.isEmpty && e.blocks.upper(0) <= seq {
            let u0 = e.blocks.upper(0)
            if e.blocks.count > 1 && e.blocks.seq(1) <= seq {
                if u0 != e.blocks.seq(1) { missing &+= e.blocks.seq(1) - u0 }
            } else if u0 != seq && u0 != seq &- 1 {
                missing &+= seq &- u0
            }
            e.blocks.remove(0)
        }
        e.trimSeq = seq
        return missing
    }

    /// TCP_Reassembler::Undelivered: content gaps up to `upTo`.
    func undelivered(_ c: inout Conn, _ e: inout Endpoint, other: Endpoint, upTo: UInt64) {
        if upTo <= 2 && c.isPartial { return }
        if !e.skipDeliveries {
            var i = 0
            while i < Int(e.blocks.count) {
                let s = e.blocks.seq(i), u = e.blocks.upper(i)
                i += 1
                if s < e.lastReassem { if u > e.lastReassem { e.lastReassem = u }; continue }
                if s >= upTo { break }
                gap(&c, &e, other: other, s - e.lastReassem)
                e.lastReassem = u
            }
            if upTo > e.lastReassem { gap(&c, &e, other: other, upTo - e.lastReassem) }
        }
        if upTo > e.lastReassem { e.lastReassem = upTo }
    }

    func gap(_ c: inout Conn, _ e: inout Endpoint, other: Endpoint, _ len: UInt64) {
        guard len > 0 else { return }
        if Self.isClean(e) && Self.isClean(other) {
            c.scaled(UInt8(ascii: "G"), &e.gapCount, &e.gapThresh, isOrig: e.isOrig)
            c.missedBytes &+= len
        }
    }

    /// TCP_Endpoint::DataSent into the reassembler.
    func dataSent(_ c: inout Conn, _ e: inout Endpoint, other: Endpoint, seq seqIn: UInt64, len: Int, captured: Int) {
        guard captured >= len else { return }          // truncated_tcp_payload: not reassembled
        guard !e.skipDeliveries else { return }
        let ack = e.relative(e.ackSeq, e.ackWraps)
        var seq = seqIn
        let upper = seqIn &+ UInt64(len)
        if seq < ack {
            if upper <= ack { return }
            seq = ack
        }
        if upper <= e.trimSeq { return }
        if seq < e.trimSeq { seq = e.trimSeq }
        e.blocks.insert(seq, upper)
        // BlockInserted: deliver what is now in order
        if seq <= e.lastReassem && upper > e.lastReassem {
            for i in 0..<Int(e.blocks.count) where e.blocks.seq(i) <= e.lastReassem && e.blocks.upper(i) > e.lastReassem {
                e.lastReassem = e.blocks.upper(i)
            }
            if e.noDataAcked && config.tcpMaxInitialWindow > 0
                && e.size(peerState: other.state) > config.tcpMaxInitialWindow {
                _ = trim(&c, &e, other: other, to: e.lastReassem)
            }
        }
        if e.noDataAcked && config.tcpMaxAboveHoleWithoutAnyAcks > 0 && !e.blocks.isEmpty {
            let last = e.blocks.upper(Int(e.blocks.count) - 1)
            if last > e.lastReassem && last - e.lastReassem > config.tcpMaxAboveHoleWithoutAnyAcks {
                e.blocks.removeAll()
                e.skipDeliveries = true
            }
        }
        if config.tcpExcessiveDataWithoutFurtherAcks > 0 && e.blocks.dataSize > config.tcpExcessiveDataWithoutFurtherAcks {
            e.blocks.removeAll()
            e.skipDeliveries = true
        }
    }

    /// TCP_Reassembler::DataPending for endpoint `e`.
    static func dataPending(_ e: Endpoint, _ other: Endpoint) -> Bool {
        if e.skipDeliveries { return false }
        let delivered = e.startSeq64 &+ e.lastReassem
        let last = e.full(e.lastSeq, e.seqWraps)
        if last < delivered { return false }
        if delivered != last &- 1 && delivered != last { return true }
        if e.state != .reset && !other.blocks.isEmpty { return true }
        return false
    }

    /// TCP_Reassembler::CheckEOF for `e`, running a deferred close.
    func checkEOF(_ c: inout Conn, _ e: inout Endpoint, _ other: inout Endpoint) {
        guard !e.didEOF, e.finCount > 0 || e.state == .closed || e.state == .reset,
              !Self.dataPending(e, other) else { return }
        e.didEOF = true
        if c.closeDeferred {
            let gen = c.deferredGenEvent
            connectionClosed(&c, &e, &other, genEvent: gen)
            c.closeDeferred = false
        }
    }

    /// TCPSessionAdapter::ConnectionClosed.
    func connectionClosed(_ c: inout Conn, _ e: inout Endpoint, _ peer: inout Endpoint, genEvent genIn: Bool) {
        var gen = genIn
        if Self.dataPending(e, peer) {
            c.closeDeferred = true
            if !c.deferredGenEvent { c.deferredGenEvent = gen }
            return
        }
        c.closeDeferred = false
        if e.didClose { return }
        e.didClose = true
        let complete = e.state == .reset || peer.didClose || peer.state == .inactive
        if complete {
            if e.prevState != .inactive || peer.state != .inactive {
                if c.deferredGenEvent { gen = true; c.deferredGenEvent = false }
                if gen { c.isActive = false }           // ConnectionFinished
            }
            c.attemptAt = 0                              // CancelTimers
            c.expireBase = 0
            c.expireBase2 = 0
            c.deleteAt = c.last &+ config.tcpCloseDelay
        } else if e.prevState != .inactive {
            if c.expireBase2 == 0 { c.expireBase2 = c.last &+ config.tcpSessionTimer }
        }
    }
}

extension Conn {
    func firstPacketSeenBoth(_ isOrig: Bool) -> Bool { firstPacketSeen & (isOrig ? 1 : 2) != 0 }
    mutating func markFirstPacketSeen(_ isOrig: Bool) { firstPacketSeen |= isOrig ? 1 : 2 }
}
