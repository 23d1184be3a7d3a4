#!/usr/bin/env bash
# bench/migrate.sh - what `tend migrate` costs, side by side with its anchor: the same files
# applied by a shell loop of `ssh host mariadb < file` (the least any tool can do: one login and
# one client per file, no history, no checks, no snapshot).
#
#   bench/migrate.sh [N]     N trivial migrations (default 100)
#
# Uses the test lab (tests/lab/lab.sh up 9, or TENDLAB_INSTANCE for another) with the shop's
# databases provisioned (the script runs playbooks/mysql.yaml first; quick when done). Prints:
#   - `up` of N migrations: wall time, SSH channels (the record's traffic), and the anchor loop;
#   - `plan` on a 200 000-row table (the server asked about an INSTANT and a COPY ALTER);
#   - the safety snapshot of that table: size and time.
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
cargo build --release --locked --quiet
tend=target/release/tend
inv=$(tests/lab/lab.sh inventory)
cfg=$(dirname "$inv")/ssh_config
"$tend" run playbooks/mysql.yaml -i "$inv" >/dev/null 2>&1
primary=$("$tend" inventory -i "$inv" --list | python3 -c 'import json,sys; print(json.load(sys.stdin)["db_primary"]["hosts"][0])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/m" "$work/big"
for i in $(seq 1 "$n"); do
    printf 'CREATE TABLE t%d (id INT PRIMARY KEY, note VARCHAR(20));\nINSERT INTO t%d VALUES (1, %s);\n' "$i" "$i" "'x'" > "$work/m/V${i}__t${i}.sql"
done
sql() { ssh -F "$cfg" "$primary" mariadb -N -e "\"$1\""; }
now() { date +%s.%N; }
sql "DROP DATABASE IF EXISTS bench_tend; DROP DATABASE IF EXISTS bench_loop; DROP DATABASE IF EXISTS bench_big; CREATE DATABASE bench_loop"

t0=$(now)
"$tend" migrate up -i "$inv" --database bench_tend --dir "$work/m" --format json > "$work/up.jsonl"
t1=$(now)
for f in $(ls "$work/m" | sort -t V -k 2 -n); do
    ssh -F "$cfg" "$primary" mariadb bench_loop < "$work/m/$f"
done
t2=$(now)
field() { # field FILE EXPR: EXPR of the record event of a JSON-lines run
    python3 -c 'import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "record":
        print(eval(sys.argv[2], {"e": e}))' "$1" "$2"
}
channels=$(field "$work/up.jsonl" 'e["traffic"]["channels"]')
printf 'CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(20) NOT NULL, payload VARCHAR(200));\nINSERT INTO events (kind, payload) SELECT %s, REPEAT(%s, 40) FROM seq_1_to_200000;\n' "'click'" "'x'" > "$work/big/V1__events.sql"
"$tend" migrate up -i "$inv" --database bench_big --dir "$work/big" >/dev/null 2>&1
sql "ANALYZE TABLE bench_big.events" >/dev/null
printf 'ALTER TABLE events ADD COLUMN seen TINYINT NOT NULL DEFAULT 0;\nALTER TABLE events MODIFY payload VARCHAR(100);\n' > "$work/big/V2__changes.sql"
t3=$(now)
"$tend" migrate plan -i "$inv" --database bench_big --dir "$work/big" --format json > "$work/plan.jsonl"
t4=$(now)
"$tend" migrate up -i "$inv" --database bench_big --dir "$work/big" --allow-blocking --format json > "$work/big.jsonl"
snap=$(field "$work/big.jsonl" '"%.1f MB in %s s" % (e["snapshot"]["bytes"] / 1e6, e["snapshot"]["seconds"])')
plan=$(python3 -c 'import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r["event"] == "row"]
print(", ".join("%s/%s rows=%s" % (r["algorithm"], r["lock"], r["rows"]) for r in rows))' "$work/plan.jsonl")
sql "DROP DATABASE bench_tend; DROP DATABASE bench_loop; DROP DATABASE bench_big"

python3 - "$n" "$t0" "$t1" "$t2" "$t3" "$t4" "$channels" "$snap" "$plan" <<'EOF'
import sys
n, t0, t1, t2, t3, t4 = int(sys.argv[1]), *map(float, sys.argv[2:7])
channels, snap, plan = sys.argv[7], sys.argv[8], sys.argv[9]
tend, loop = t1 - t0, t2 - t1
print(f"| measure | tend | anchor: ssh + mariadb per file | tend / anchor |")
print(f"|---|---|---|---|")
print(f"| up, {n} trivial migrations | {tend:.2f} s | {loop:.2f} s | {tend / loop:.2f} |")
print(f"| SSH channels | {channels} (one connection) | {n} (one login each) | {int(channels) / n:.2f} |")
print(f"| plan, 200 000-row table (2 ALTERs) | {t4 - t3:.2f} s | - | - |")
print(f"| plan's answer | {plan} | | |")
print(f"| safety snapshot of that table | {snap} | - | - |")
EOF
