#!/usr/bin/env python3
"""Splits a callgrind count (made with --dump-instr=yes) into the stages of the data path.

    stages.py [--yardstick SOURCE] PACKETS OUT:BINARY [OUT:BINARY ...]
prints one column per OUT, in instructions per packet. SOURCE (yardstick.c) tells which lines
of the yardstick's handle() write the descriptor, pick the ring, copy.

Each executed instruction is charged to a stage by the chain of functions it was inlined
from (llvm-symbolizer --inlining on the binary with its debug info): the innermost function
of the chain that a rule below names decides. Functions outside the binary (libc's memcpy) are
charged by name. Everything no rule names is "dispatch" (the per-packet loop, flags, lengths,
the choice of the record's fields).
"""
import collections, os, re, shutil, subprocess, sys

# (stage, regex on the function's demangled name): the first rule that matches a frame wins
RULES = [
    # lb (Swift: Type.method)
    ("receive", r"^ReplaySource\."),
    ("parse", r"^(Decoder\.(classify|fastIP|classifyVXLAN|mayBeTeredo|fast|decode|slow)\b|TunnelPortTable\.|WalkParams\.|"
              r"Walk\.|FastFrame\.|FastIP\.|EncapKind\.init|UnsafeRawBufferPointer\.(be16|be32|be64|u8|mac)\b)"),
    ("hash", r"^(Decoder\.flowHash|FlowHash\.)"),
    ("ring choice", r"^(SharedState\.isAttached|Dispatcher\.isAttached|IndirectionTable\.ring)\b"),
    ("reserve", r"^(LaneProducer\.(reserve|reserveRecord|refreshTail|commit)\b|RecordWriter\.init)"),
    ("publish", r"^(LaneProducer\.(publish|wakeConsumer)|Dispatcher\.publishAll)\b"),
    ("descriptor", r"^(RecordWriter\.describe|lb_desc\.init|Dispatcher\.describeFast)\b"),
    ("tunnel info", r"^RecordWriter\.writeTunnelInfo\b"),
    ("copy", r"^(copyPacketBytes|EthernetHeader\.|RecordWriter\.(packet|writePacket|writeEthernet))"),
    ("counters", r"^(Counters\.|Dispatcher\.(mirrorFragmentCounters|countForwarded)|LaneProducer\.countDrop)\b"),
    ("fragments", r"^(FragmentTable\.|Dispatcher\.drainFragments)\b"),
    # the C yardstick
    ("receive", r"^receive$"),
    ("parse", r"^(decode|quoted_ports|be16|be32|be64|mac|v4mapped)$"),
    ("hash", r"^(flow_hash|endpoint|mum)$"),
    ("reserve", r"^(reserve|refresh_tail)$"),
    ("publish", r"^publish_all$"),
    ("tunnel info", r"^write_tunnel_info$"),
    ("counters", r"^(count|count_ring)$"),
]
C_HANDLE_LINES = []     # filled from the source: (stage, first, last) inside the yardstick's handle()
BY_NAME = [("copy", r"memcpy|memmove"), ("fragments", r"FragmentTable"), ("counters", r"Counters")]
ORDER = ["receive", "parse", "hash", "ring choice", "reserve", "descriptor", "tunnel info", "copy", "publish",
         "counters", "fragments", "dispatch"]


def yardstick_lines(path):
    """The lines of the yardstick's handle() that work out and write the descriptor (from
    its flags to the end of the struct literal), pick the ring, reserve and copy."""
    out = []
    lines = open(path).read().split("\n")
    first = next(i for i, l in enumerate(lines, 1) if "uint32_t flags = 0;" in l)
    last = next(i for i, l in enumerate(lines, 1) if "int tunnel = d.depth" in l)
    out.append(("descriptor", first, last))
    for i, l in enumerate(lines, 1):
        if "*desc = (struct lb_desc)" in l:
            j = i
            while not lines[j - 1].rstrip().endswith("};"):
                j += 1
            out.append(("descriptor", i - 1, j))     # and the l3 offset just above it
        elif "memcpy(rec + tunnel" in l:
            out.append(("copy", i, i))
        elif "int r = table[hash >>" in l or "attached[r], memory_order_relaxed" in l:
            out.append(("ring choice", i, i))
        elif "prod[r].next++" in l or "reserve(&prod[r]" in l:
            out.append(("reserve", i, i))
    return out


def parse(path):
    """Self cost per (object, function, address)."""
    cost = collections.Counter()
    names = {"ob": {}, "fn": {}, "cob": {}, "cfn": {}}
    ob = fn = None
    positions = ["line"]
    last = [0]
    skip = False
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("positions:"):
            positions = line.split()[1:]
            last = [0] * len(positions)
            continue
        m = re.match(r"^(ob|fn|cob|cfn|fl|fi|fe|cfi|cfl)=(?:\((\d+)\))?\s*(.*)$", line)
        if m:
            kind, ident, name = m.groups()
            table = names.get(kind if kind in ("ob", "fn") else ("cob" if kind == "cob" else "cfn"), {})
            if kind in ("ob", "fn", "cob", "cfn"):
                key = "ob" if kind in ("ob", "cob") else "fn"
                if ident and name:
                    names[key][ident] = name
                resolved = names[key].get(ident, name) if ident else name
                if kind == "ob":
                    ob = resolved
                elif kind == "fn":
                    fn = resolved
            continue
        if line.startswith("calls="):
            skip = True
            continue
        if not line or line[0] not in "0123456789+-*":
            continue
        parts = line.split()
        vals = []
        for i in range(len(positions)):
            p = parts[i]
            if p == "*":
                v = last[i]
            elif p[0] in "+-":
                v = last[i] + int(p, 0)
            else:
                v = int(p, 0)
            vals.append(v)
        last = vals
        if skip:
            skip = False
            continue
        if len(parts) > len(positions):
            cost[(ob, fn, vals[0])] += int(parts[len(positions)])
    return cost


def symbolize(binary, addrs):
    """For each address, its chain of (demangled function, line), innermost first."""
    tool = shutil.which("llvm-symbolizer", path="/opt/swift/usr/bin") or shutil.which("llvm-symbolizer")
    text = "\n".join(hex(a) for a in addrs) + "\n"
    out = subprocess.run([tool, "--obj=" + binary, "--inlining", "--functions=linkage", "--output-style=LLVM"],
                         input=text, capture_output=True, text=True).stdout
    out = subprocess.run(["swift", "demangle", "--simplified"], input=out, capture_output=True, text=True).stdout
    chains = []
    for block in out.split("\n\n"):
        lines = [l for l in block.split("\n") if l]
        frames = []
        for k in range(0, len(lines) - 1, 2):
            name = re.sub(r"^((specialized|generic specialization <.*?> of|merged|static) )+", "", lines[k])
            loc = lines[k + 1].rsplit(":", 2)
            frames.append((name, int(loc[1]) if len(loc) > 1 and loc[1].isdigit() else 0))
        chains.append(frames)
    return chains[:len(addrs)]


def load_base(cost, main_obj, binary):
    """Where the binary was loaded (valgrind puts a position-independent one at an offset):
    the lowest counted address of the function with the most instructions is its entry."""
    per_fn = collections.Counter()
    low = {}
    for (ob, fn, a), c in cost.items():
        if ob == main_obj:
            per_fn[fn] += c
            low[fn] = min(low.get(fn, a), a)
    fn = max(per_fn, key=per_fn.get)
    nm = subprocess.run(["nm", binary], capture_output=True, text=True).stdout
    for l in nm.split("\n"):
        parts = l.split()
        if len(parts) == 3 and parts[2] == fn:
            return low[fn] - int(parts[0], 16)
    sys.exit(f"stages.py: {fn} not found in {binary}")


def stage_of(frames):
    for fn, line in frames:                  # innermost first
        if fn == "handle":                   # the yardstick's: by line
            for stage, a, b in C_HANDLE_LINES:
                if a <= line <= b:
                    return stage
        for stage, rule in RULES:
            if re.search(rule, fn):
                return stage
    return "dispatch"


def main(args):
    if args[0] == "--yardstick":
        C_HANDLE_LINES.extend(yardstick_lines(args[1]))
        args = args[2:]
    packets = float(args[0])
    columns = []
    for spec in args[1:]:
        out, binary = spec.split(":", 1)
        cost = parse(out)
        by_obj = collections.Counter()
        for (ob, fn, a), c in cost.items():
            by_obj[ob] += c
        main_obj = max(by_obj, key=by_obj.get)
        base = load_base(cost, main_obj, binary)
        addrs = sorted({a for (ob, fn, a) in cost if ob == main_obj})
        chains = dict(zip(addrs, symbolize(binary, [a - base for a in addrs])))
        stages = collections.Counter()
        for (ob, fn, a), c in cost.items():
            if ob == main_obj:
                stages[stage_of(chains.get(a, []))] += c
            else:
                st = next((s for s, r in BY_NAME if re.search(r, fn or "")), "dispatch")
                stages[st] += c
        columns.append(stages)
    total = [sum(s.values()) for s in columns]
    for st in ORDER:
        if any(s[st] for s in columns):
            print(f"{st:12s}" + "".join(f"{s[st] / packets:10.1f}" for s in columns))
    print(f"{'total':12s}" + "".join(f"{t / packets:10.1f}" for t in total))


if __name__ == "__main__":
    main(sys.argv[1:])
