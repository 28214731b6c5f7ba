#!/usr/bin/env bash
# The live comparison: the same generator (`lb gen -i`) and the same offered loads on a veth
# pair between two network namespaces, into each receiver in turn:
#   xdp_rx         the limit: a minimal C AF_XDP receive loop (bench/live/xdp_rx.c), one socket,
#                  woken by poll(2) for every batch
#   xdp_rx:USEC    the same loop sleeping USEC microseconds after each wake-up, so batches gather
#   netsniff:N     the peer: N netsniff-ng processes in one AF_PACKET fan-out group (-K hash)
#   lb_xdp:N       lb -i af_xdp:IFACE -p t:N, N `lb cat t:K -w /dev/null` consumers
#   lb_packet:N    lb -i af_packet:IFACE -p t:N, the same consumers
# For each receiver and load it reports frames sent, received, lost, loss %, and the CPU
# seconds per million received frames of the receiver's processes (time on CPU of every
# receiver process and thread, lb's consumers included, from schedstat), plus the kernel's
# receive work on CPU_KERNEL (its softirq time, where RPS puts the AF_PACKET path, and the
# threaded-NAPI kthread that runs the veth's XDP path; no process is charged for either).
# By default the kernel's receive work runs on the sender's CPU, apart from the receivers, as
# a NIC's interrupts and NAPI run on their own CPUs on a sensor: CPU 0 is "the wire and the
# NIC", CPU 1 the receivers. CPU_KERNEL=1 puts it with the receivers instead (see README).
# Every receiver sleeps when idle, so the CPU figure is a cost, not a busy-poll figure. Then
# each receiver's loss-free rate: the highest offered load with no loss.
#
# Writes $OUT.md (a markdown table) and $OUT.json; prints the table.
#
#   sudo bench/live/run.sh                                   # everything, default loads
#   LOADS="100000 400000 0" DURATION=3 sudo bench/live/run.sh   # 0 = as fast as the sender can
#   RECEIVERS="xdp_rx netsniff:2" sudo bench/live/run.sh
#
# Environment (defaults in brackets):
#   LB_BINARY    the lb under test [.build/release/lb, built when missing]
#   LB_ARGS      more arguments for lb, e.g. "--xdp-frames 16384" [none]
#   NAPI_DEFER   µs: the receiving veth's NAPI runs from a timer of this period (sysfs
#                gro_flush_timeout, napi_defer_hard_irqs=2) for every receiver, as lb sets it
#                for itself by default (--napi-defer); 0: the kernel's defaults [200]
#   RECEIVERS    ["xdp_rx xdp_rx:200 netsniff:2 netsniff:4 lb_xdp:2 lb_xdp:4 lb_packet:2"]
#   LOADS        offered loads in packets/s, 0 = as fast as possible ["50000 100000 200000 400000 800000 0"]
#   DURATION     seconds of sending per point [5]
#   TRACE        a capture to replay (Ethernet) [a synthetic mix made with lb gen]
#   GEN_ARGS     how that mix is made ["--mode mix --sizes imix --flows 2000 --packets 200000 --seed 1"]
#   MTU          of the veth pair [1600: VXLAN/GENEVE-wrapped 1514-byte frames fit, XDP still runs]
#   CPU_GEN, CPU_RX  CPUs for the sender and for all receiver processes [0, 1]
#   CPU_KERNEL   the CPU of the kernel's receive work (RPS and the NAPI kthread) [CPU_GEN]
#   XDP_MODE     native | skb, for xdp_rx [native]
#   NICE         niceness of the sender and of every receiver process, so that other work on the
#                machine disturbs the figures less [-15]
#   NAPI         softirq: the veth's NAPI (the XDP path) runs in softirq on the sender's CPU, the
#                way the AF_PACKET path does there; threaded: in a kthread pinned to CPU_KERNEL
#                [softirq when CPU_KERNEL is CPU_GEN, else threaded]
#   OUT          output path without extension [bench/live/results]
# lb rows are SKIPPED, with a loud message, only when lb refuses -i af_xdp:/af_packet: (a
# branch without live ingress); every other failure stops the run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (namespaces, veth, XDP)" >&2; exit 1; }
# What this benchmark needs beyond scripts/setup, from Debian, installed only when missing.
need=()
command -v netsniff-ng >/dev/null || need+=(netsniff-ng)
command -v ip >/dev/null || need+=(iproute2)
command -v taskset >/dev/null || need+=(util-linux)
dpkg -s libxdp-dev >/dev/null 2>&1 || need+=(libxdp-dev)
dpkg -s libbpf-dev >/dev/null 2>&1 || need+=(libbpf-dev)
command -v clang >/dev/null || command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    echo "run.sh: installing ${need[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

RECEIVERS="${RECEIVERS:-xdp_rx xdp_rx:200 netsniff:2 netsniff:4 lb_xdp:2 lb_xdp:4 lb_packet:2}"
LOADS="${LOADS:-50000 100000 200000 400000 800000 0}"
DURATION="${DURATION:-5}"
GEN_ARGS="${GEN_ARGS:---mode mix --sizes imix --flows 2000 --packets 200000 --seed 1}"
MTU="${MTU:-1600}"
CPU_GEN="${CPU_GEN:-0}"
CPU_RX="${CPU_RX:-1}"
CPU_KERNEL="${CPU_KERNEL:-$CPU_GEN}"
XDP_MODE="${XDP_MODE:-native}"
NICE="${NICE:--15}"
LB_ARGS="${LB_ARGS:-}"
NAPI_DEFER="${NAPI_DEFER:-200}"
# the veth's NAPI runs in softirq on the sender's CPU; a kthread when it must move elsewhere
if [ "$CPU_KERNEL" = "$CPU_GEN" ]; then NAPI="${NAPI:-softirq}"; else NAPI="${NAPI:-threaded}"; fi
OUT="${OUT:-$here/results}"
HZ="$(getconf CLK_TCK)"

# The table and the JSON from a rows file (its first line: "#meta", when, host, trace,
# seconds per point, lb). The rows are kept as $OUT.tsv; RENDER=FILE.tsv renders one again.
render() {
awk -F'\t' -v hz=1e9 -v md="$OUT.md" -v js="$OUT.json" '
$1 == "#meta" { when = $2; host = $3; trace = $4; dur = $5; lbbin = $6; next }
{
    k++; r = $1; lost = $3 - $5; mp = $5 / 1e6; O[r, $2] = $4
    cpu = (mp > 0 ? $6 / hz / mp : 0); sirq = (mp > 0 ? $7 / hz / mp : 0)
    loss = ($3 ? 100 * lost / $3 : 0)
    line[k] = sprintf("| %s | %s | %d | %.0f | %d | %d | %.3f | %.2f | %.2f | %.2f | %d |", r, ($2 == 0 ? "max" : $2), $3, $4, $5, lost, loss, cpu, sirq, cpu + sirq, $8)
    obj[k] = sprintf("{\"receiver\":\"%s\",\"target_pps\":%d,\"sent\":%d,\"offered_pps\":%.0f,\"received\":%d,\"lost\":%d,\"loss_pct\":%.4f,\"rx_cpu_s_per_mpkt\":%.4f,\"kernel_rx_s_per_mpkt\":%.4f,\"sender_busy\":%d}",
                     r, $2, $3, $4, $5, lost, loss, cpu, sirq, $8)
    if (!(r in seen)) { seen[r] = 1; order[++nr] = r }
    if (lost <= 0 && $4 > best[r]) best[r] = $4
    if (lost > 0) lossy[r] = 1
    K[r, $2] = 1; L[r, $2] = loss; C[r, $2] = cpu; T[r, $2] = cpu + sirq
    if (!(($2) in seenload)) { seenload[$2] = 1; loads[++nl] = $2 }
}
END {
    print "Live comparison, " when " (" host "), trace " trace ", " dur " s per point, lb: " lbbin > md
    print "" > md
    print "| receiver | target pps | sent | offered pps | received | lost | loss % | receiver CPU s / Mpkt | kernel rx CPU s / Mpkt | total s / Mpkt | sender busy |" > md
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" > md
    for (i = 1; i <= k; i++) print line[i] > md
    print "" > md
    print "| receiver | loss-free rate (highest offered pps with no loss) |" > md
    print "| --- | ---: |" > md
    for (i = 1; i <= nr; i++) printf("| %s | %s |\n", order[i], (order[i] in best ? sprintf("%s%.0f", (order[i] in lossy ? "" : "at least "), best[order[i]]) : "none")) > md
    print "" > md
    print "(\"at least\": it lost nothing at any load, so its limit lies above the fastest load offered.)" > md
    # The targets of issue 3: lb AF_XDP loses no more than the peer (netsniff-ng with as many
    # processes as lb has rings) at every load, uses at most half its CPU per packet, and
    # reaches 90% of the loss-free rate of the C loop.
    for (i = 1; i <= nr; i++) {
        r = order[i]
        if (r !~ /^lb_xdp:/) continue
        peer = "netsniff:" substr(r, 8)
        if (!heading) { print "" > md; print "Targets (lb AF_XDP against the peer with as many processes, and against the C loop):" > md; print "" > md; heading = 1 }
        lossok = 1; cpuok = 1; totok = 1; n = 0; apart = ""
        for (j = 1; j <= nl; j++) {
            l = loads[j]
            if (!((r, l) in K) || !((peer, l) in K)) continue
            n++
            # a loss at a rate the peer was never offered (its sender could not go that fast)
            # is no comparison: listed apart
            if (L[r, l] > L[peer, l]) {
                if (O[r, l] > 1.1 * O[peer, l]) apart = apart sprintf("; at %s lb was offered %.0f pps and lost %.3f %%, the peer was offered only %.0f", (l == 0 ? "max" : l), O[r, l], L[r, l], O[peer, l])
                else lossok = 0
            }
            if (C[r, l] > 0.5 * C[peer, l]) cpuok = 0
            if (T[r, l] > 0.5 * T[peer, l]) totok = 0
        }
        if (n == 0) { printf("- %s: no %s rows to compare with\n", r, peer) > md; continue }
        printf("- %s vs %s over %d loads: loses no more at rates offered alike: %s; at most half the receiver CPU per packet: %s; at most half the total (with kernel rx): %s%s\n",
               r, peer, n, (lossok ? "yes" : "NO"), (cpuok ? "yes" : "NO"), (totok ? "yes" : "NO"), apart) > md
        # the limit: the best loss-free rate of the C loop, with or without its sleep
        lim = 0; limname = ""
        for (j = 1; j <= nr; j++) if (order[j] ~ /^xdp_rx/ && (order[j] in best) && best[order[j]] > lim) { lim = best[order[j]]; limname = order[j] }
        if (lim > 0 && (r in best))
            printf("- %s loss-free rate %.0f = %.0f%% of the %.0f of %s, the best C loop (target 90%%)\n", r, best[r], 100 * best[r] / lim, lim, limname) > md
    }
    printf("{\"when\":\"%s\",\"host\":\"%s\",\"trace\":\"%s\",\"duration_s\":%s,\"rows\":[", when, host, trace, dur) > js
    for (i = 1; i <= k; i++) printf("%s%s", (i > 1 ? "," : ""), obj[i]) > js
    printf("],\"loss_free_pps\":{") > js
    for (i = 1; i <= nr; i++) printf("%s\"%s\":%s", (i > 1 ? "," : ""), order[i], (order[i] in best ? sprintf("%.0f", best[order[i]]) : "null")) > js
    print "}}" > js
}' "$1"
cat "$OUT.md"
echo "== wrote $OUT.md and $OUT.json" >&2
}

if [ -n "${RENDER:-}" ]; then render "$RENDER"; exit 0; fi

export PATH="/opt/swift/usr/bin:$PATH"
LB="${LB_BINARY:-$repo/.build/release/lb}"
if [ ! -x "$LB" ]; then
    echo "== building lb (release)" >&2
    swift build -c release --package-path "$repo" --product lb >&2
fi

work="$(mktemp -d /tmp/lbg-live.XXXXXX)"
cc="${CC:-}"
if [ -z "$cc" ]; then if command -v clang >/dev/null; then cc=clang; else cc=gcc; fi; fi
"$cc" -O2 -Wall -Wextra -o "$work/xdp_rx" "$here/xdp_rx.c" -lxdp -lbpf

# Namespaces and the veth pair, named with this run's pid; removed on any exit.
tag=$$
nsS="lbgs$tag"; nsR="lbgr$tag"; ifS="lbgt$tag"; ifR="lbgu$tag"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$nsS" 2>/dev/null || true
    ip netns del "$nsR" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$nsS"
ip netns add "$nsR"
ip link add "$ifS" netns "$nsS" mtu "$MTU" type veth peer name "$ifR" netns "$nsR" mtu "$MTU"
for pair in "$nsS:$ifS" "$nsR:$ifR"; do
    ns="${pair%%:*}"; dev="${pair#*:}"
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    ip netns exec "$ns" ip link set "$dev" up
done
# The kernel's receive work goes to CPU_KERNEL, where it can be measured: RPS moves the
# AF_PACKET path (netif_rx backlog) there, and threaded NAPI (set once an XDP program gives the
# veth its NAPI instance) runs the XDP path in a kthread pinned there.
ip netns exec "$nsR" sh -c "printf '%x' $((1 << CPU_KERNEL)) > /sys/class/net/$ifR/queues/rx-0/rps_cpus"
inS() { ip netns exec "$nsS" "$@"; }
inR() { ip netns exec "$nsR" "$@"; }

# The traffic: one capture replayed by every run.
trace="${TRACE:-}"
if [ -z "$trace" ]; then
    trace="$work/mix.pcap"
    # shellcheck disable=SC2086
    "$LB" gen -w "$trace" $GEN_ARGS 2>&2
fi

# CPU time in ns, summed over the given pids and all their threads: the first field of
# /proc/PID/task/TID/schedstat (exact, where utime+stime in /proc/PID/stat come in 10 ms ticks).
cpu_ns() {
    local sum=0 p f v
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r v _ <"$f" 2>/dev/null || continue
            sum=$((sum + v))
        done
    done
    echo "$sum"
}
# CPU_KERNEL's softirq time in ns (from /proc/stat, in ticks).
softirq() { awk -v c="cpu$CPU_KERNEL" -v hz="$HZ" '$1 == c {printf "%.0f\n", $8 * 1e9 / hz}' /proc/stat; }
json_field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | tail -1; }

# Can this lb take live input? A branch without it refuses -i af_xdp: at once, saying so; an lb
# that has it is still waiting for its consumer when `timeout` ends it. Any other failure is
# real and stops the run.
lb_supports() {
    local kind="$1" rundir="$work/probe-$1" rc=0
    mkdir -p "$rundir"
    LB_RUN_DIR="$rundir" inR timeout 3 "$LB" -i "$kind:$ifR" -p lbgprobe:1 -w 10 >"$rundir/out" 2>"$rundir/err" || rc=$?
    [ "$rc" = 124 ] && return 0
    grep -qiE "not built|not supported|unsupported|unknown input" "$rundir/err" && return 1
    echo "run.sh: $LB -i $kind:$ifR failed (exit $rc):" >&2
    cat "$rundir/err" >&2
    exit 1
}

declare -A skip=()
for r in $RECEIVERS; do
    case "$r" in
        lb_xdp:*|lb_packet:*)
            kind=af_xdp; [ "${r%%:*}" = lb_packet ] && kind=af_packet
            if [ -z "${skip[$kind]:-}" ] && ! lb_supports "$kind"; then skip[$kind]=1; fi ;;
    esac
done
for kind in "${!skip[@]}"; do
    echo "!!!!!!!! SKIPPING the lb rows for -i $kind: $LB refuses it ($(head -c 200 "$work/probe-$kind/err"))" >&2
done

# Sets the receiving veth's gro_flush_timeout (ns) and napi_defer_hard_irqs.
napi_knobs() {
    ip netns exec "$nsR" sh -c "echo $1 > /sys/class/net/$ifR/gro_flush_timeout && echo $2 > /sys/class/net/$ifR/napi_defer_hard_irqs"
}

# Starts the receivers of one configuration; sets rx_pids (the processes whose CPU counts),
# stop_pids (signalled at the end) and rx_kind.
start_receivers() {
    local r="$1" n="${1#*:}" k
    rx_pids=(); stop_pids=()
    case "$r" in
        xdp_rx|xdp_rx:*)
            local mode=-N wait=0; [ "$XDP_MODE" = skb ] && mode=-S
            [ "$r" != xdp_rx ] && wait="$n"
            ip netns exec "$nsR" nice -n "$NICE" taskset -c "$CPU_RX" "$work/xdp_rx" -i "$ifR" "$mode" -w "$wait" >"$work/rx.0.out" 2>"$work/rx.0.err" &
            rx_pids=($!); stop_pids=($!) ;;
        netsniff:*)
            for ((k = 0; k < n; k++)); do
                ip netns exec "$nsR" nice -n "$NICE" taskset -c "$CPU_RX" netsniff-ng -i "$ifR" -o /dev/null -C "$((tag % 65000))" -K hash \
                    -s -A -Q -N -S 16MiB >"$work/rx.$k.out" 2>&1 &
                rx_pids+=($!); stop_pids+=($!)
            done ;;
        lb_xdp:*|lb_packet:*)
            local kind=af_xdp; [ "${r%%:*}" = lb_packet ] && kind=af_packet
            local rundir="$work/run-$r"; mkdir -p "$rundir"
            LB_RUN_DIR="$rundir" ip netns exec "$nsR" nice -n "$NICE" taskset -c "$CPU_RX" "$LB" -i "$kind:$ifR" -p "t:$n" -w 10 --napi-defer "$NAPI_DEFER" $LB_ARGS >"$work/rx.lb.out" 2>"$work/rx.lb.err" &
            local lbpid=$!
            rx_pids=($lbpid); stop_pids=($lbpid)
            for ((k = 0; k < n; k++)); do
                LB_RUN_DIR="$rundir" ip netns exec "$nsR" nice -n "$NICE" taskset -c "$CPU_RX" "$LB" cat "t:$k" -w /dev/null >/dev/null 2>"$work/rx.cat$k.err" &
                rx_pids+=($!)
            done ;;
        *) echo "run.sh: unknown receiver $r" >&2; exit 1 ;;
    esac
    pids+=("${rx_pids[@]}")
    sleep 2
    for p in "${rx_pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { echo "run.sh: receiver $r died at start:" >&2; cat "$work"/rx.* >&2; exit 1; }
    done
    # the same NAPI timer for every receiver: lb sets it itself (--napi-defer), the others get it here
    case "$r" in
        lb_*) ;;
        *) napi_knobs "$((NAPI_DEFER * 1000))" "$([ "$NAPI_DEFER" -gt 0 ] && echo 2 || echo 0)" ;;
    esac
    kern_pids=()
    if [ "$NAPI" = threaded ] && ip netns exec "$nsR" sh -c "echo 1 > /sys/class/net/$ifR/threaded" 2>/dev/null; then
        sleep 0.3
        local d c want="napi/$ifR-"
        for d in /proc/[0-9]*; do
            c="$(cat "$d/comm" 2>/dev/null)" || continue
            if [ "$c" = "${want:0:15}" ] || [[ "$c" == "$want"* ]]; then
                taskset -pc "$CPU_KERNEL" "${d#/proc/}" >/dev/null
                renice -n "$NICE" -p "${d#/proc/}" >/dev/null
                kern_pids+=("${d#/proc/}")
            fi
        done
    fi
}

# True while the process runs (a zombie, exited but not yet reaped, counts as gone).
running() {
    local st
    st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    st="${st##*) }"
    [ "${st%% *}" != Z ]
}

# Stops them (SIGTERM, then SIGKILL after 30 s) and sets `received`: how many frames they got.
stop_receivers() {
    local r="$1" p
    for p in "${stop_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    # lb drains its rings into its consumers before it exits: give it time
    for p in "${stop_pids[@]}"; do
        for _ in $(seq 300); do running "$p" || break; sleep 0.1; done
    done
    # lb's consumers end with lb's stream; whatever still runs is told to stop, then killed
    for p in "${rx_pids[@]}"; do running "$p" && kill -TERM "$p" 2>/dev/null; done
    for p in "${rx_pids[@]}"; do
        for _ in $(seq 50); do running "$p" || break; sleep 0.1; done
        if running "$p"; then echo "run.sh: $r: pid $p still running after SIGTERM, killed" >&2; kill -KILL "$p" 2>/dev/null || true; fi
        wait "$p" 2>/dev/null || true
    done
    case "$r" in
        xdp_rx*) received="$(json_field packets <"$work/rx.0.out")" ;;
        netsniff:*) received="$(cat "$work"/rx.*.out | tr '\r' '\n' | awk '/packets passed filter/ {s += $1} END {print s + 0}')" ;;
        lb_*) received="$(grep '"packets_received"' "$work/rx.lb.out" | grep '"final":true' | json_field packets_forwarded)" ;;
    esac
}

rows="$work/rows.tsv"
printf '#meta\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(nproc) CPUs, $(uname -r); sender on CPU $CPU_GEN, kernel receive work ($NAPI NAPI, timer ${NAPI_DEFER} µs) on CPU $CPU_KERNEL, receivers on CPU $CPU_RX" \
    "$(basename "$trace")" "$DURATION" "$LB" >"$rows"
printf '== %s, %s s per point, loads: %s\n' "$trace" "$DURATION" "$LOADS" >&2
for r in $RECEIVERS; do
    case "$r" in lb_xdp:*) [ -n "${skip[af_xdp]:-}" ] && continue ;; lb_packet:*) [ -n "${skip[af_packet]:-}" ] && continue ;; esac
    for load in $LOADS; do
        start_receivers "$r"
        t0="$(cpu_ns "${rx_pids[@]}")"; s0="$(( $(softirq) + $(cpu_ns "${kern_pids[@]}") ))"
        each0=(); for p in "${rx_pids[@]}"; do each0+=("$(cpu_ns "$p")"); done
        gen="$(inS nice -n "$NICE" "$LB" gen -i "$ifS" --replay "$trace" --rate "$load" --duration "$DURATION" --cpu "$CPU_GEN" 2>"$work/gen.err")" \
            || { cat "$work/gen.err" >&2; exit 1; }
        sleep 1                                   # let the receivers drain
        t1="$(cpu_ns "${rx_pids[@]}")"; s1="$(( $(softirq) + $(cpu_ns "${kern_pids[@]}") ))"
        each=""; k=0; for p in "${rx_pids[@]}"; do each+=" $(( ($(cpu_ns "$p") - each0[k]) / 1000000 ))"; k=$((k + 1)); done
        stop_receivers "$r"
        sent="$(json_field packets_sent <<<"$gen")"
        achieved="$(json_field rate_pps <<<"$gen")"
        [ -n "$received" ] || { echo "run.sh: $r reported no count; its output:" >&2; tail -n 5 "$work"/rx.* >&2; exit 1; }
        if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; for f in "$work"/rx.*; do cp "$f" "$KEEP/$r-$load.${f##*/rx.}"; done; fi
        rm -f "$work"/rx.*
        busy="$(json_field busy_retries <<<"$gen")"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$load" "$sent" "$achieved" "$received" "$((t1 - t0))" "$((s1 - s0))" "$busy" >>"$rows"
        awk -F'\t' -v hz=1e9 'END {lost = $3 - $5; mp = $5 / 1e6;
            printf "%-12s load %8s  sent %9d (%7.0f pps)  received %9d  lost %8d (%6.3f%%)  rx cpu %6.2f s/Mpkt  kernel rx %6.2f s/Mpkt\n",
                $1, ($2 == 0 ? "max" : $2), $3, $4, $5, lost, ($3 ? 100 * lost / $3 : 0),
                (mp > 0 ? $6 / hz / mp : 0), (mp > 0 ? $7 / hz / mp : 0)}' "$rows" >&2
        echo "             CPU ms of each receiver process (lb first, then its consumers):$each" >&2
    done
done
cp "$rows" "$OUT.tsv"
render "$rows"
