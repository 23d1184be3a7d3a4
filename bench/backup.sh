#!/usr/bin/env bash
# bench/backup.sh - what `tend backup run`, `tend restore` and `tend backup verify` cost on a
# database of GB gigabytes, side by side with their anchors: the bare tools run by hand over the
# same path. Logical: the replica's `mariadb-dump | zstd` piped over SSH to the store host; the
# store's file piped over SSH into `zstd -dc | mariadb` on the replica. Physical: the replica's
# `mariabackup --backup --stream=xbstream | zstd` to the store; the store's file into `zstd -dc
# | mbstream -x` beside the replica's datadir, `mariabackup --prepare`, the server stopped, the
# datadir renamed into place, the server started.
#
#   bench/backup.sh [GB] [logical|physical]     (default 2 logical)
#
# Uses the test lab (tests/lab/lab.sh up 9, or TENDLAB_INSTANCE for another) with the shop's
# databases provisioned (runs playbooks/mysql.yaml first). Creates `bench_backup` (rows of about
# 1 KB of hex, which compresses about as well as real data), then prints wall time, throughput
# (MB/s of the uncompressed table data), the ratio to the anchor and tend's peak RSS. The
# replica is restored by both (replication stopped, then started again by tend). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
gb=${1:-2}
kind=${2:-logical}
case $kind in logical|physical) ;; *) echo "usage: bench/backup.sh [GB] [logical|physical]" >&2; exit 2;; esac
cargo build --release --locked --quiet
tend=target/release/tend
inv=$(tests/lab/lab.sh inventory)
cfg=$(dirname "$inv")/ssh_config
"$tend" run playbooks/mysql.yaml -i "$inv" >/dev/null 2>&1
list=$("$tend" inventory -i "$inv" --list)
first() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]]["hosts"][0])' "$1" <<<"$list"; }
primary=$(first db_primary)
replica=$(first db_replica)
storeh=$(first app)
dir=/var/tmp/tend-bench-store
E=(-i "$inv" -e "backup_store_host=$storeh" -e "backup_store_dir=$dir")
sql() { ssh -F "$cfg" "$1" mariadb -N -e "\"$2\""; }
now() { date +%s.%N; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ssh -F "$cfg" "$storeh" "rm -rf $dir /var/tmp/bare.sql.zst"

echo "== $gb GB of rows in bench_backup on $primary (replicated to $replica)"
sql "$primary" "DROP DATABASE IF EXISTS bench_backup; CREATE DATABASE bench_backup; CREATE TABLE bench_backup.t (id INT PRIMARY KEY, payload VARCHAR(1000) NOT NULL) ENGINE=InnoDB"
batch=100000
for ((b = 0; b < gb * 10; b++)); do
    sql "$primary" "USE bench_backup; INSERT INTO t SELECT seq, CONCAT(SHA2(CONCAT(seq,'a'),512), SHA2(CONCAT(seq,'b'),512), SHA2(CONCAT(seq,'c'),512), SHA2(CONCAT(seq,'d'),512), SHA2(CONCAT(seq,'e'),512), SHA2(CONCAT(seq,'f'),512), SHA2(CONCAT(seq,'g'),512)) FROM seq_$((b * batch + 1))_to_$(((b + 1) * batch))"
done
pos=$(sql "$primary" "SELECT @@gtid_binlog_pos")
sql "$replica" "SELECT MASTER_GTID_WAIT('$pos', 3600)" >/dev/null
mb=$(sql "$primary" "SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1e6) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'bench_backup'")
"$tend" backup binlogs "${E[@]}" >/dev/null

stats() { sed -n 's/^tend-stats: //p' "$1" | python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read())["max_rss_kb"] / 1024))'; }
field() { python3 -c 'import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "record":
        print(eval(sys.argv[2], {"e": e}))' "$1" "$2"; }

if [ "$kind" = logical ]; then
bare_backup() {
    ssh -F "$cfg" "$replica" "mariadb-dump --single-transaction --routines --triggers --events --hex-blob --all-databases | zstd -q -3 -T0" |
        ssh -F "$cfg" "$storeh" "cat > /var/tmp/bare.sql.zst"
}
bare_restore() {
    ssh -F "$cfg" "$storeh" "cat /var/tmp/bare.sql.zst" |
        ssh -F "$cfg" "$replica" "{ echo 'SET SESSION sql_log_bin = 0;'; zstd -dc; } | mariadb --max-allowed-packet=1G"
}
else
bare_backup() {
    ssh -F "$cfg" "$replica" "cd /var/tmp && mariabackup --backup --stream=xbstream 2>/dev/null | zstd -q -3 -T0" |
        ssh -F "$cfg" "$storeh" "cat > /var/tmp/bare.sql.zst"
}
bare_restore() {
    ssh -F "$cfg" "$storeh" "cat /var/tmp/bare.sql.zst" |
        ssh -F "$cfg" "$replica" "set -e; n=/var/lib/mysql.bare; rm -rf \$n /var/lib/mysql.bare-old; mkdir \$n
            zstd -dc | mbstream -x -C \$n; mariabackup --prepare --target-dir=\$n --use-memory=256M 2>/dev/null
            cp -p /var/lib/mysql/master.info /var/lib/mysql/multi-master.info \$n/; chown -R mysql:mysql \$n
            service mariadb stop >/dev/null; mv /var/lib/mysql /var/lib/mysql.bare-old; mv \$n /var/lib/mysql
            service mariadb start >/dev/null; rm -rf /var/lib/mysql.bare-old"
}
fi
steps() { python3 -c 'import json, sys
print(", ".join("%s %.1f s" % (e["step"], e.get("duration_ms", 0) / 1000) for e in map(json.loads, open(sys.argv[1])) if e["event"] == "step"))' "$1"; }

echo "== $kind backup: bare tools | zstd | ssh, tend backup run (from the replica), bare again"
t0=$(now)
bare_backup
t1=$(now)
TEND_STATS=1 "$tend" backup run --kind "$kind" --from "$replica" "${E[@]}" --format json > "$work/run.jsonl" 2> "$work/run.err"
t2=$(now)
bare_backup
t2b=$(now)
id=$(field "$work/run.jsonl" 'e["id"]')
bytes=$(field "$work/run.jsonl" 'e["bytes"]')
rss_backup=$(stats "$work/run.err")

echo "== $kind restore onto the replica: bare tools, tend restore, bare again"
sql "$replica" "STOP SLAVE"
t3=$(now)
bare_restore
t4=$(now)
TEND_STATS=1 "$tend" restore --target "$replica" --backup "$id" --yes --force "${E[@]}" --format json > "$work/restore.jsonl" 2> "$work/restore.err"
t5=$(now)
sql "$replica" "STOP SLAVE"
bare_restore
t5b=$(now)
sql "$replica" "START SLAVE"
rss_restore=$(stats "$work/restore.err")

echo "== verify (a scratch server on the replica's host)"
TEND_STATS=1 "$tend" backup verify "$id" "${E[@]}" --format json > "$work/verify.jsonl" 2> "$work/verify.err"
verify_restore=$(field "$work/verify.jsonl" 'e["verification"]["restore_seconds"]')
verify_all=$(field "$work/verify.jsonl" 'e["verification"]["seconds"]')
rss_verify=$(stats "$work/verify.err")

python3 - "$mb" "$bytes" "$t0" "$t1" "$t2" "$t2b" "$t3" "$t4" "$t5" "$t5b" "$kind" <<'EOF'
import sys
mb, stored = float(sys.argv[1]), int(sys.argv[2])
t = [float(x) for x in sys.argv[3:11]]
# Each tend run sits between two bare runs: the anchor is their mean (the second run of a kind
# finds caches and InnoDB's background work in another state than the first).
bare_b, tend_b = ((t[1] - t[0]) + (t[3] - t[2])) / 2, t[2] - t[1]
bare_r, tend_r = ((t[5] - t[4]) + (t[7] - t[6])) / 2, t[6] - t[5]
print(f"\n{sys.argv[11]}: table data {mb:.0f} MB, stored {stored / 1e6:.0f} MB (zstd -3)")
print(f"bare runs: backup {t[1] - t[0]:.1f} s and {t[3] - t[2]:.1f} s, restore {t[5] - t[4]:.1f} s and {t[7] - t[6]:.1f} s")
print(f"{'':10} {'bare (s)':>9} {'tend (s)':>9} {'bare MB/s':>10} {'tend MB/s':>10} {'tend/bare':>10}")
for name, b, x in (("backup", bare_b, tend_b), ("restore", bare_r, tend_r)):
    print(f"{name:10} {b:9.1f} {x:9.1f} {mb / b:10.1f} {mb / x:10.1f} {x / b:10.2f}")
EOF
echo "tend backup steps: $(steps "$work/run.jsonl")"
echo "tend restore steps: $(steps "$work/restore.jsonl")"
echo "verify: restore in the scratch server ${verify_restore} s, whole verification ${verify_all} s"
echo "tend peak RSS: backup ${rss_backup} MB, restore ${rss_restore} MB, verify ${rss_verify} MB"
sql "$primary" "DROP DATABASE bench_backup"
ssh -F "$cfg" "$storeh" "rm -rf $dir /var/tmp/bare.sql.zst"
