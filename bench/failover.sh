#!/usr/bin/env bash
# bench/failover.sh - what the applications see during failovers: RTO and RPO of N switchover
# drills and M kill-primary drills in the lab (each killed server started again and rejoined),
# with min, median and max, the time of each step, and the probe's own resolution.
#
#   bench/failover.sh [N] [M]     (default 10 5)
#
# Uses the test lab (tests/lab/lab.sh up 9, or TENDLAB_INSTANCE for another) with the shop
# provisioned (runs playbooks/site.yaml first). The cluster ends with its first primary. Not
# part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
m=${2:-5}
cargo build --release --locked --quiet
tend=target/release/tend
inv=$(tests/lab/lab.sh inventory)
"$tend" run playbooks/site.yaml -i "$inv" >/dev/null 2>&1
E=(-i "$inv" -e failover_cooldown=0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
list=$("$tend" inventory -i "$inv" --list)
first() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]]["hosts"][0])' "$1" <<<"$list"; }
primary=$(first db_primary)
num() { echo "${1#h}"; }

for ((i = 1; i <= n; i++)); do
    "$tend" failover drill --kind switchover "${E[@]}" --format json > "$work/switchover-$i.jsonl" 2>/dev/null ||
        { echo "switchover drill $i failed:" >&2; tail -3 "$work/switchover-$i.jsonl" >&2; exit 1; }
done
for ((i = 1; i <= m; i++)); do
    "$tend" failover drill --kind kill-primary "${E[@]}" --format json > "$work/kill-$i.jsonl" 2>/dev/null ||
        { echo "kill-primary drill $i failed:" >&2; tail -3 "$work/kill-$i.jsonl" >&2; exit 1; }
    killed=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "record": print(e["from"])' "$work/kill-$i.jsonl")
    tests/lab/lab.sh exec "$(num "$killed")" sh -c 'service mariadb start >/dev/null 2>&1'
    "$tend" failover rejoin "$killed" "${E[@]}" >/dev/null 2>&1
done
# Back to the first primary (when it is already, this only checks and finishes).
"$tend" failover switchover --to "$primary" "${E[@]}" >/dev/null 2>&1

python3 - "$work" "$n" "$m" <<'EOF'
import json, statistics, sys, os
work, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def records(prefix, k):
    out = []
    for i in range(1, k + 1):
        for line in open(os.path.join(work, f"{prefix}-{i}.jsonl")):
            e = json.loads(line)
            if e["event"] == "record":
                out.append(e)
    return out
def mmm(xs):
    return f"{min(xs):>7.0f} {statistics.median(xs):>7.0f} {max(xs):>7.0f}" if xs else "      -       -       -"
for name, recs in (("switchover", records("switchover", n)), ("kill-primary", records("kill", m))):
    print(f"\n{name}: {len(recs)} drills")
    print(f"{'':24} {'min':>7} {'median':>7} {'max':>7}")
    print(f"{'RTO (ms)':24} {mmm([r['rto_ms'] for r in recs])}")
    print(f"{'RPO (writes missing)':24} {mmm([len(r['rpo_missing']) for r in recs])}")
    print(f"{'failed probe writes':24} {mmm([r['probe']['failed'] for r in recs])}")
    print(f"{'probe write (ms, p50)':24} {mmm([r['probe']['latency_p50_ms'] for r in recs])}")
    steps = {}
    for r in recs:
        for p in r["phases"]:
            steps.setdefault(p["name"], []).append(p["end_ms"] - p["start_ms"])
    for s, xs in steps.items():
        print(f"{'  ' + s + ' (ms)':24} {mmm(xs)}")
    if recs:
        print(f"probe: {recs[0]['probe']['rate']} writes/s, one every {recs[0]['probe']['interval_ms']:.0f} ms: "
              "RTO is known to within one interval plus one write")
EOF
