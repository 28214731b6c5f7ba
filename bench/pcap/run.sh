#!/usr/bin/env bash
# liblbpcap against the C ABI and the pipe: packets per second of one consumer on one ring, all
# consumers on the same trace in the same lb run (issue 13, item 5). bench/README.md, section
# "liblbpcap: a pcap program on a ring", explains the rows and has the figures.
#
#   bench/pcap/run.sh                          # udp64 (2,000,000) and mix (1,000,000), + corpus if present; 5 runs
#   bench/pcap/run.sh --inputs udp64 --repeat 9 --cpu 1
#   bench/pcap/run.sh --udp64-packets 4000000 --rows "tcpdump pipe example pcap_analyze"
#
# Options: --inputs "udp64 mix corpus", --repeat R (5), --udp64-packets N (2000000),
# --mix-packets N (1000000), --corpus-packets N (400000), --rows "..." (all seven), --cpu N (pin
# every consumer process with taskset; none by default), --corpus DIR (../shared/zeek-corpus/traces),
# --lbpcap FILE (preload another liblbpcap.so, e.g. a patched build, instead of the tree's).
#
# Each repetition of an input is one lb run: `lb -i pcap:TRACE` with one group of one ring per
# row, plus a gate group, every ring sized to hold the whole trace. Each row's consumer is
# started, and stopped (SIGSTOP, by bench/pcap/runner.c) as soon as lb shows it attached. Then a
# consumer on the gate ring lets lb replay: lb writes the whole trace into every ring and marks
# the end of the stream. Then the stopped consumers are released (SIGCONT) one at a time, in an
# order that rotates from one repetition to the next, each alone on the machine: the time from
# its release to its exit is the consumer's alone. CPU time is user + system from wait4 (the
# whole process), minus what it used before it was stopped (start-up and attaching, which maps
# and populates the whole ring: from /proc/PID/task/*/schedstat), so "CPU after release".
# Every run checks that each consumer got every packet and lb dropped none; it fails otherwise.
# Results: a markdown table on stdout, JSON lines in bench/.build/pcap-bench.json.
set -euo pipefail
shopt -s inherit_errexit
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
inputs=""; lbpcap=""; repeat=5; udp64_packets=2000000; mix_packets=1000000; corpus_packets=400000; cpu=""
rows_all="tcpdump pipe example pcap_analyze pcap_count abi_analyze abi_count"
rows="$rows_all"
corpus_dir="$root/../shared/zeek-corpus/traces"
while [ $# -gt 0 ]; do
    case "$1" in
        --inputs) inputs=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --udp64-packets) udp64_packets=$2; shift 2 ;;
        --mix-packets) mix_packets=$2; shift 2 ;;
        --corpus-packets) corpus_packets=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --cpu) cpu=$2; shift 2 ;;
        --corpus) corpus_dir=$2; shift 2 ;;
        --lbpcap) lbpcap=$2; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "pcap/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
corpus_files=("$corpus_dir/ssh/ssh.pcap" "$corpus_dir/irc-dcc-send.pcapng" "$corpus_dir/http/no_crlf.pcap")
if [ -z "$inputs" ]; then
    inputs="udp64 mix"
    [ -f "${corpus_files[0]}" ] && [ -f "${corpus_files[1]}" ] && [ -f "${corpus_files[2]}" ] && inputs="$inputs corpus"
fi
for r in $rows; do
    case " $rows_all " in *" $r "*) ;; *) echo "pcap/run.sh: unknown row $r (rows: $rows_all)" >&2; exit 2 ;; esac
done
command -v tcpdump >/dev/null || { echo "pcap/run.sh: tcpdump is needed (apt-get install tcpdump)" >&2; exit 1; }
command -v jq >/dev/null || { echo "pcap/run.sh: jq is needed (apt-get install jq)" >&2; exit 1; }
pin=()
[ -n "$cpu" ] && pin=(taskset -c "$cpu")

# ---- release builds --------------------------------------------------------------------------
# scripts/install builds lb (swift build -c release --product lb) and liblbworker (release) and
# installs them with lb_worker.h and lbworker.pc, as bench/worker.sh does; liblbpcap.so is
# Sources/CLBPcap/build.sh's (release flags: -O2), built first so the install ships the same one.
prefix="$here/../.build/worker-prefix"
"$root/Sources/CLBPcap/build.sh" >&2
"$root/scripts/install" --prefix "$prefix" >&2
lb="$prefix/bin/lb"
lib="${lbpcap:-$root/.build/release/liblbpcap.so}"
[ -f "$lib" ] || { echo "pcap/run.sh: $lib is missing" >&2; exit 1; }
case "$lib" in /*) ;; *) lib="$PWD/$lib" ;; esac
bin="$here/../.build/pcap"
mkdir -p "$bin"
cflags=(-O2 -Wall -Wextra)
lbw=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs lbworker)
cc "${cflags[@]}" -o "$bin/pcap_runner" "$here/runner.c"
cc "${cflags[@]}" -o "$bin/pcap_consumer" "$here/consumer.c" -lpcap
# shellcheck disable=SC2086
cc "${cflags[@]}" -DLB_ABI -o "$bin/abi_consumer" "$here/consumer.c" $lbw
# shellcheck disable=SC2086
cc "${cflags[@]}" -o "$bin/lb_worker_example" "$root/examples/c/lb_worker_example.c" $lbw
json="$here/../.build/pcap-bench.json"
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
host="$(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(uname -r)"
: > "$json"

work=$(mktemp -d /tmp/lb-pcap-bench.XXXXXX)
declare -A group_of    # runner pid -> its consumer's process group
cleanup() {
    # only our own jobs that are still running (a runner holds its consumer's pid until it exits)
    local p
    for p in $(jobs -p); do
        if [ -n "${group_of[$p]:-}" ]; then
            kill -KILL -- "-${group_of[$p]}" 2>/dev/null || true
            kill -CONT -- "-${group_of[$p]}" 2>/dev/null || true
            kill -KILL "$p" 2>/dev/null || true
        else
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "pcap/run.sh: FAILED: $*" >&2
    for f in "$work"/cur/*.err "$work"/cur/lb.err; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }
    done
    exit 1
}

# ---- traces ----------------------------------------------------------------------------------
trace_of() {
    local input=$1 f="$work/$1.pcap"
    case "$input" in
        udp64) "$lb" gen -w "$f" --mode udp64 --packets "$udp64_packets" --sizes 60 >&2 || exit 1 ;;
        mix) "$lb" gen -w "$f" --packets "$mix_packets" >&2 || exit 1 ;;
        corpus) "$bin/pcap_consumer" cycle "$f" "$corpus_packets" "${corpus_files[@]}" || exit 1 ;;
        *) echo "pcap/run.sh: unknown input $input (udp64, mix, corpus)" >&2; exit 2 ;;
    esac
    echo "$f"
}

# ---- one consumer --------------------------------------------------------------------------------
# the command of each row; its ring is the group of the same name, ring 0
row_cmd() {
    local row=$1 run=$2 g="${1/_/}"
    local pre=(env "LD_PRELOAD=$lib" "LB_RUN_DIR=$run" LBPCAP_WAIT=60)
    case "$row" in
        tcpdump) echo "${pin[*]} ${pre[*]} tcpdump -Z root -w /dev/null -i lb:$g:0" ;;
        pipe) echo "${pin[*]} $lb cat $g:0 --run-dir $run | ${pin[*]} tcpdump -Z root -r - -w /dev/null" ;;
        example) echo "${pin[*]} $bin/lb_worker_example $g:0 $run" ;;
        pcap_analyze) echo "${pin[*]} ${pre[*]} $bin/pcap_consumer analyze lb:$g:0" ;;
        pcap_count) echo "${pin[*]} ${pre[*]} $bin/pcap_consumer count lb:$g:0" ;;
        abi_analyze) echo "${pin[*]} $bin/abi_consumer analyze $g:0 $run" ;;
        abi_count) echo "${pin[*]} $bin/abi_consumer count $g:0 $run" ;;
    esac
}

# packets the row's consumer says it got (the pipe: lb cat's count, from lb's final stats)
row_count() {
    local row=$1 d=$2
    case "$row" in
        tcpdump) sed -n 's/^\([0-9]*\) packets captured$/\1/p' "$d/$row.err" ;;
        pipe) jq -r 'select(.interface=="pipe:0") | .consumer_packets_processed' "$d/lb.out" ;;
        example) sed -n 's/^ring .* processed \([0-9]*\) .*/\1/p' "$d/$row.out" ;;
        *) sed -n 's/^packets \([0-9]*\) .*/\1/p' "$d/$row.out" ;;
    esac
}

stats() { "$lb" stats --run-dir "$1" --json 2>/dev/null || true; }

wait_line() {   # FILE PATTERN SECONDS
    local i
    for i in $(seq $(( $3 * 100 ))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    return 1
}

# ---- one repetition: one lb run, every row ---------------------------------------------------------
one_run() {
    local input=$1 trace=$2 n=$3 slots=$4 size=$5 rep=$6
    local d="$work/cur" run="$work/cur/run"
    rm -rf "$d"; mkdir -p "$d"
    local groups=() row
    for row in $rows; do groups+=(-p "${row/_/}:1"); done
    groups+=(-p gate:1)
    "$lb" -i "pcap:$trace" "${groups[@]}" --run-dir "$run" -w 300 --drain-timeout 600 \
        --ring-slots "$slots" --ring-size "$size" > "$d/lb.out" 2> "$d/lb.err" &
    local lbpid=$!
    declare -A runner
    for row in $rows; do
        local cmd; cmd=$(row_cmd "$row" "$run")
        # shellcheck disable=SC2086
        "$bin/pcap_runner" "$d/$row.status" "$d/$row.out" "$d/$row.err" -- $cmd &
        runner[$row]=$!
        wait_line "$d/$row.status" '^pids' 10 || fail "$row: the runner did not start"
        local pg; pg=$(awk '/^pids/ {print $2}' "$d/$row.status")
        group_of[${runner[$row]}]=$pg
        local i ok=0
        for i in $(seq 3000); do
            if [ "$(stats "$run" | jq -r --arg r "${row/_/}:0" 'select(.interface==$r) | .consumer')" = attached ]; then ok=1; break; fi
            # a consumer that gave up (it is a zombie until the runner reaps it)
            case "$(awk '{print $3}' "/proc/$pg/stat" 2>/dev/null || echo gone)" in Z|X|gone) break ;; esac
            sleep 0.02
        done
        [ $ok = 1 ] || fail "$input: $row did not attach"
        kill -USR1 "${runner[$row]}"
        wait_line "$d/$row.status" '^stopped' 10 || fail "$row: not stopped"
        ! grep -q '^exited' "$d/$row.status" || fail "$input: $row exited before it was released"
    done
    # the gate: lb replays the trace into every ring once this one is attached too
    "$bin/abi_consumer" count gate:0 "$run" > "$d/gate.out" 2> "$d/gate.err" || fail "$input: the gate consumer failed"
    [ "$(sed -n 's/^packets \([0-9]*\) .*/\1/p' "$d/gate.out")" = "$n" ] || fail "$input: the gate consumer did not get $n packets"
    local s; s=$(stats "$run")
    for row in $rows; do
        local want="${row/_/}:0"
        echo "$s" | jq -s -e --arg r "$want" --argjson n "$n" \
            'map(select(.interface==$r)) | length == 1 and (.[0] | .packets_forwarded == $n and .backlog == $n and .packets_dropped == 0)' >/dev/null \
            || fail "$input: ring $want does not hold all $n packets before the release: $(echo "$s" | jq -c --arg r "$want" 'select(.interface==$r)')"
    done
    # release them one at a time, the order rotating with the repetition
    local order=() k=0 list=($rows)
    for k in "${!list[@]}"; do order+=("${list[$(( (k + rep) % ${#list[@]} ))]}"); done
    local pos=0 load
    for row in "${order[@]}"; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        kill -USR2 "${runner[$row]}"
        wait "${runner[$row]}" || fail "$input: $row exited with an error: $(tail -1 "$d/$row.status")"
        local res; res=$(tail -1 "$d/$row.status")
        echo "$res" | jq -e . >/dev/null || fail "$input: $row: no result"
        echo "$input $row $pos $load $res" >> "$d/results"
        pos=$((pos + 1))
    done
    wait "$lbpid" || fail "$input: lb exited with an error"
    for row in $rows; do
        local got; got=$(row_count "$row" "$d")
        [ "$got" = "$n" ] || fail "$input: $row got ${got:-nothing}, not $n packets"
        jq -s -e --arg r "${row/_/}:0" --argjson n "$n" \
            'map(select(.interface==$r)) | length == 1 and (.[0] | .packets_forwarded == $n and .packets_dropped == 0 and .consumer_packets_processed == $n)' \
            "$d/lb.out" >/dev/null || fail "$input: lb's final stats for ${row/_/}:0 are not $n forwarded, none dropped, $n consumed"
    done
    # the same code on the same bytes must find the same TCP loss through both libraries
    if [[ " $rows " == *" pcap_analyze "* && " $rows " == *" abi_analyze "* ]]; then
        local a b
        a=$(sed -n 's/.* gaps \([0-9]*\) acks \([0-9]*\) .*/\1 \2/p' "$d/pcap_analyze.out")
        b=$(sed -n 's/.* gaps \([0-9]*\) acks \([0-9]*\) .*/\1 \2/p' "$d/abi_analyze.out")
        [ "$a" = "$b" ] || fail "$input: pcap_analyze found gaps/acks $a, abi_analyze $b"
    fi
    local date; date=$(date -u +%FT%TZ)
    while read -r inp row pos load res; do
        local extra=""
        case "$row" in
            example|pcap_analyze|abi_analyze) extra=$(sed -n 's/.* gaps \([0-9]*\) acks \([0-9]*\) .*/{"gaps":\1,"acks":\2}/p' "$d/$row.out") ;;
        esac
        [ -n "$extra" ] || extra="{}"
        echo "$res" | jq -c --arg input "$inp" --arg row "$row" --argjson rep "$rep" --argjson pos "$pos" \
            --argjson n "$n" --argjson load "$load" --arg date "$date" --arg cpu "${cpu:-none}" --argjson extra "$extra" \
            '{type:"run", input:$input, row:$row, rep:$rep, release_order:$pos, packets:$n, date:$date, pinned_cpu:$cpu,
              loadavg_1m:$load} + . + {cpu_after_release_s:(.cpu_s - .cpu_before_s),
              mpps:($n / .wall_s / 1e6), wall_ns_per_packet:(.wall_s * 1e9 / $n),
              cpu_ns_per_packet:((.cpu_s - .cpu_before_s) * 1e9 / $n)} + $extra' >> "$json"
    done < "$d/results"
}

# ---- the runs ------------------------------------------------------------------------------------
for input in $inputs; do
    trace=$(trace_of "$input")
    geometry=$("$bin/pcap_consumer" need "$trace")
    read -r _ n _ slots _ size <<< "$geometry"
    mean=$(( ($(stat -c %s "$trace") - 24) / n - 16 ))
    nrows=$(wc -w <<< "$rows")
    echo "$input: $n packets, mean $mean bytes; rings of $slots slots and $size bytes, $((nrows + 1)) of them" \
         "($(( (slots * 64 + size) * (nrows + 1) / 1048576 )) MiB)" >&2
    # every ring is memory (shmem) for the whole run: refuse what the machine cannot hold
    avail=$(( $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) * 1024 ))
    if [ $(( (slots * 64 + size) * (nrows + 1) )) -gt $(( avail / 10 * 8 )) ]; then
        echo "pcap/run.sh: $input needs more ring memory than 80% of the $(( avail / 1048576 )) MiB available; use fewer packets" >&2
        exit 1
    fi
    jq -n -c --arg input "$input" --argjson n "$n" --argjson mean "$mean" --argjson slots "$slots" --argjson size "$size" \
        --arg lbpcap "$lib" --arg commit "$commit" --arg cpu "${cpu:-none}" --arg host "$host" \
        '{type:"input", input:$input, packets:$n, mean_bytes:$mean, ring_slots:$slots, ring_bytes:$size, lbpcap:$lbpcap,
          commit:$commit, pinned_cpu:$cpu, machine:$host}' >> "$json"
    for rep in $(seq 0 $((repeat - 1))); do
        one_run "$input" "$trace" "$n" "$slots" "$size" "$rep"
        echo "  run $((rep + 1))/$repeat: $(jq -r --arg i "$input" --argjson r "$rep" \
            'select(.type=="run" and .input==$i and .rep==$r) | "\(.row) \(.mpps*100|round/100)"' "$json" | paste -sd' ')" >&2
    done
    rm -f "$trace"
done

# ---- the summary and the table ----------------------------------------------------------------------
# Medians over the repetitions. The ratios are medians of per-repetition ratios (the rows of one
# repetition ran in the same lb run, one after the other): pps_vs_X = X's wall time / this row's
# (above 1: faster than X), cpu_vs_X = X's CPU after release / this row's (above 1: cheaper).
jq -s -c --arg rows "$rows" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
  [.[] | select(.type=="run")] as $runs
  | ($rows | split(" ")) as $order
  | [.[] | select(.type=="input") | .input] as $inputs
  | $inputs[] as $in
  | ($runs | map(select(.input == $in))) as $r
  | $order[] as $row
  | ($r | map(select(.row == $row))) as $x
  | select($x | length > 0)
  | def ratio($other; f): [$x[] as $a | ($r[] | select(.row == $other and .rep == $a.rep)) as $b | ($b | f) / ($a | f)] | median;
    {type: "summary", input: $in, row: $row, runs: ($x | length), packets: $x[0].packets,
     mpps_median: ($x | map(.mpps) | median), mpps_min: ($x | map(.mpps) | min), mpps_max: ($x | map(.mpps) | max),
     wall_ns_per_packet: ($x | map(.wall_ns_per_packet) | median),
     cpu_ns_per_packet: ($x | map(.cpu_ns_per_packet) | median),
     cpu_ns_per_packet_with_startup: ($x | map(.cpu_s * 1e9 / .packets) | median),
     pps_vs_example: ratio("example"; .wall_s), pps_vs_pipe: ratio("pipe"; .wall_s),
     cpu_vs_example: ratio("example"; .cpu_after_release_s), cpu_vs_pipe: ratio("pipe"; .cpu_after_release_s),
     pps_vs_abi_analyze: ratio("abi_analyze"; .wall_s), pps_vs_abi_count: ratio("abi_count"; .wall_s)}
' "$json" > "$work/summary.json"
cat "$work/summary.json" >> "$json"
jq -s -r '
  def r2: if . == null then "–" else . * 100 | round / 100 | tostring end;
  def f1: . * 10 | round / 10;
  def name: {tcpdump: "1. `tcpdump -w /dev/null -i lb:…` (liblbpcap)", pipe: "2. `lb cat … \\| tcpdump -r - -w /dev/null`",
             example: "3. C ABI: examples/c/lb_worker_example.c", pcap_analyze: "4. pcap_dispatch + the same analysis (liblbpcap)",
             pcap_count: "5. pcap_dispatch, count + first byte (liblbpcap)", abi_analyze: "6. C ABI + row 4’s code (diagnostic)",
             abi_count: "7. C ABI, count + first byte (diagnostic)"}[.];
  "| input | consumer | Mpps, median (range) | wall ns/pkt | CPU ns/pkt after release | CPU ns/pkt with start-up | pps × C ABI example | pps × pipe |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
  (.[] | "| \(.input) | \(.row | name) | **\(.mpps_median | r2)** (\(.mpps_min | r2)–\(.mpps_max | r2)) | \(.wall_ns_per_packet | f1) | \(.cpu_ns_per_packet | f1) | \(.cpu_ns_per_packet_with_startup | f1) | \(.pps_vs_example | r2) | \(.pps_vs_pipe | r2) |")
' "$work/summary.json"
