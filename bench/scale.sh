#!/usr/bin/env bash
# bench/scale.sh - what one control node pays per host: tend's peak RSS, CPU time and open file
# descriptors (its CPU includes each `ssh` that makes a master, up to authentication: tend
# waits for it), and the SSH master processes' peak RSS summed over them, for a playbook (three tasks: a fact-free command, a file, a template) over N hosts, for each N given. The hosts are N inventory aliases spread over the lab's hosts (each alias has
# its own SSH master, as a distinct host would), so 200 "hosts" need no 200 namespaces.
#
#   bench/scale.sh [N...]      (default 50 100 200)
#
# Uses the test lab (tests/lab/lab.sh up 10, or TENDLAB_INSTANCE for another); prints one line
# per N and the cost per host between the smallest and the largest N. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50 100 200)
cargo build --release --locked --quiet
tend=$PWD/target/release/tend
labinv=$(tests/lab/lab.sh inventory)
key=$(awk '/ansible_ssh_private_key_file:/ {print $2; exit}' "$labinv")
args=$(sed -n 's/^ *ansible_ssh_common_args: //p' "$labinv" | head -n 1)
lab_known=$(printf '%s' "$args" | sed -n 's/.*UserKnownHostsFile=\([^ "]*\).*/\1/p')
hosts=$(tests/lab/lab.sh status | awk '$4 == "up" {print $2}')
[ -n "$hosts" ] || { echo "no lab host is up: tests/lab/lab.sh up 10" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A known-hosts file of the run's own: its path in the masters' command lines finds them.
cp "$lab_known" "$work/known_hosts"
args=${args//$lab_known/$work/known_hosts}
cat > "$work/play.yaml" <<'PLAY'
- hosts: all
  gather_facts: false
  tasks:
    - command: uname -r
    - file: { path: "/tmp/tend-scale-{{ inventory_hostname }}", state: touch, modification_time: preserve, access_time: preserve }
    - copy: { dest: "/tmp/tend-scale-{{ inventory_hostname }}.conf", content: "host={{ inventory_hostname }}\n" }
PLAY
printf '%6s %9s %9s %8s %8s %13s %6s\n' hosts wall_s rss_MiB cpu_s fds_max ssh_rss_MiB failed
declare -A rss cpu sshrss
for n in "${sizes[@]}"; do
    {
        echo "all:"
        echo "  vars:"
        echo "    ansible_user: root"
        echo "    ansible_ssh_private_key_file: $key"
        echo "    ansible_ssh_common_args: $args"
        echo "  hosts:"
        i=0
        while [ "$i" -lt "$n" ]; do
            for a in $hosts; do
                [ "$i" -lt "$n" ] || break
                i=$((i + 1))
                printf '    s%04d:\n      ansible_host: %s\n' "$i" "$a"
            done
        done
    } > "$work/inv.yaml"
    /usr/bin/time -f '%e %M %U %S' -o "$work/time" \
        "$tend" run "$work/play.yaml" -i "$work/inv.yaml" --forks "$n" --format json > "$work/out.jsonl" 2>/dev/null &
    pid=$!
    fds=0 ssh_peak=0
    while kill -0 "$pid" 2>/dev/null; do
        t=$(pgrep -P "$pid" -x tend || true)
        for p in $t; do
            c=$(ls "/proc/$p/fd" 2>/dev/null | wc -l) || continue
            [ "$c" -le "$fds" ] || fds=$c
        done
        # The SSH masters (daemons, not in time's figures): their RSS summed now.
        sum=0
        for p in $(pgrep -f -- "$work/known_hosts" || true); do
            while read -r k v _; do
                if [ "$k" = VmRSS: ]; then sum=$((sum + v)); break; fi
            done 2>/dev/null < "/proc/$p/status" || true
        done
        [ "$sum" -le "$ssh_peak" ] || ssh_peak=$sum
        sleep 0.05
    done
    wait "$pid" || true
    read -r wall maxkb user sys < "$work/time"
    failed=$(python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if "\"recap\"" in l][-1]
print(sum(1 for c in r["hosts"].values() if c["failed"] or c["unreachable"]))' "$work/out.jsonl")
    rss[$n]=$maxkb
    cpu[$n]=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
    sshrss[$n]=$ssh_peak
    printf '%6s %9s %9.1f %8s %8s %13.1f %6s\n' "$n" "$wall" "$(awk -v k="$maxkb" 'BEGIN{print k/1024}')" "${cpu[$n]}" "$fds" \
        "$(awk -v k="$ssh_peak" 'BEGIN{print k/1024}')" "$failed"
    tests/lab/lab.sh status >/dev/null
done
lo=${sizes[0]}; hi=${sizes[${#sizes[@]}-1]}
if [ "$lo" != "$hi" ]; then
    awk -v a="${rss[$lo]}" -v b="${rss[$hi]}" -v ca="${cpu[$lo]}" -v cb="${cpu[$hi]}" -v na="$lo" -v nb="$hi" \
        -v sa="${sshrss[$lo]}" -v sb="${sshrss[$hi]}" \
        'BEGIN{printf "per host (from %d to %d hosts): tend %.0f KiB RSS, %.1f ms CPU; its ssh master %.0f KiB RSS\n", na, nb, (b-a)/(nb-na), (cb-ca)*1000/(nb-na), (sb-sa)/(nb-na)}'
fi
