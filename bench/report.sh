#!/usr/bin/env bash
# The daily report's parse speed: `tend report daily` and GoAccess (Debian's) on the same
# generated day of the shop's access log, each pinned to one core, side by side in one run.
#
#   bench/report.sh [LINES] [ROUNDS]      # default 1000000 lines, 3 rounds (root for apt)
#
# Prints the median wall time, lines per second and peak memory of each, the ratio of tend's
# speed to GoAccess', and checks that both counted the same requests and visitors (a tool that
# skipped lines cannot look fast). tend reads the log as a plain file and as its log store
# keeps it (gzip); GoAccess reads the plain file with the matching --log-format.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
rounds=${2:-3}
work=target/bench/report
mkdir -p "$work"
export DEBIAN_FRONTEND=noninteractive
command -v goaccess >/dev/null || { apt-get update -qq && apt-get install -y -qq goaccess >/dev/null; }
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
cargo build --release --locked -q
tend=target/release/tend
date=2026-12-02
log=$work/access-$lines.log
if [ ! -s "$log" ]; then
    echo "writing $lines lines to $log" >&2
    python3 bench/accesslog.py "$lines" "$date" > "$log.tmp" && mv "$log.tmp" "$log"
fi
store=$work/store-$lines
if [ ! -s "$store/lb1/nginx_access/$date.log.gz" ]; then
    mkdir -p "$store/lb1/nginx_access"
    gzip -6 -c "$log" > "$store/lb1/nginx_access/$date.log.gz"
fi
core=0
# One timed run: prints "seconds max_rss_kib"; the tool's output goes to $2.
timed() {
    local out=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" taskset -c "$core" "$@" > "$out" 2>"$work/stderr" \
        || { cat "$work/stderr" >&2; exit 1; }
    cat "$work/time"
}
declare -A secs rss
for r in $(seq "$rounds"); do
    # Alternate the order every round, so neither tool always meets a warm or cold cache.
    tools=(tend-plain tend-gzip goaccess)
    [ $((r % 2)) -eq 0 ] && tools=(goaccess tend-gzip tend-plain)
    for t in "${tools[@]}"; do
        case $t in
        tend-plain) res=$(timed "$work/tend.json" "$tend" report daily --date "$date" --format json "$log") ;;
        tend-gzip) res=$(timed "$work/tend-gz.json" "$tend" report daily --date "$date" --store "$store" --format json) ;;
        goaccess) res=$(timed /dev/null goaccess "$log" --no-global-config --no-progress \
            --log-format='%h %^[%d:%t %^] "%r" %s %b "%R" "%u" %T "%^"' \
            --date-format=%d/%b/%Y --time-format=%T -o "$work/goaccess.json") ;;
        esac
        secs[$t]+="${res% *} "
        rss[$t]+="${res#* } "
    done
done
python3 - "$lines" "$work" <<PY
import json, statistics, sys
lines, work = int(sys.argv[1]), sys.argv[2]
secs = {"tend-plain": "${secs[tend-plain]}", "tend-gzip": "${secs[tend-gzip]}", "goaccess": "${secs[goaccess]}"}
rss = {"tend-plain": "${rss[tend-plain]}", "tend-gzip": "${rss[tend-gzip]}", "goaccess": "${rss[goaccess]}"}
tend = json.load(open(f"{work}/tend.json"))
tgz = json.load(open(f"{work}/tend-gz.json"))
ga = json.load(open(f"{work}/goaccess.json"))["general"]
counts = {
    "tend-plain": (tend["requests"], tend["visitors"]),
    "tend-gzip": (tgz["requests"], tgz["visitors"]),
    "goaccess": (ga["valid_requests"], ga["unique_visitors"]),
}
med = {t: statistics.median(float(x) for x in v.split()) for t, v in secs.items()}
mem = {t: max(int(x) for x in v.split()) for t, v in rss.items()}
print(f"{lines} lines, {len(secs['goaccess'].split())} round(s), one core each (median wall time)")
print(f"{'tool':<12} {'seconds':>8} {'lines/s':>12} {'peak MiB':>9} {'vs GoAccess':>12}  requests / visitors counted")
for t in ["tend-plain", "tend-gzip", "goaccess"]:
    rate = lines / med[t]
    print(f"{t:<12} {med[t]:>8.2f} {rate:>12,.0f} {mem[t] / 1024:>9.1f} {med['goaccess'] / med[t]:>11.1f}x  {counts[t][0]} / {counts[t][1]}")
bad = [t for t, c in counts.items() if c[0] != lines]
if bad or len({c[1] for c in counts.values()}) != 1:
    sys.exit(f"the tools did not count the same requests and visitors: {counts}")
PY
