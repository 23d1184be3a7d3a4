#!/usr/bin/env bash
# The main job on a fresh Debian machine (root): build tend, start a lab of 5 real SSH hosts,
# provision the shop (MariaDB primary + replica, Nginx load balancer and database proxy, two
# Tomcat app servers with the sample app) with playbooks/site.yaml, show it answering, plan the
# shop's schema migrations (migrations/), deploy release 2 of the app with them, one server
# at a time behind the load balancer, take a logical and a physical backup of the database, ship
# its binlogs, prove a backup by restoring it into a scratch server, plan a point-in-time
# restore, and drill a failover (RTO and RPO measured by a write probe, an HTML report) and
# switch back; then collect the hosts' logs, run the routine checks and report today's traffic.
# It also shows the example inventory's vaulted passwords staying hidden.
set -euo pipefail
cd "$(dirname "$0")"

command -v jar >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jdk-headless; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
command -v unzip >/dev/null || { apt-get update -qq && apt-get install -y -qq unzip; }
cargo build --release --locked
tend=target/release/tend
tests/lab/lab.sh up 5
inv=$(tests/lab/lab.sh inventory)

echo; echo "== the lab inventory"
"$tend" inventory -i "$inv" --graph
echo "== the example inventory keeps its passwords in a vault (group_vars/all/vault.yaml); shown as <vault>"
"$tend" inventory -i inventory.example.yaml --host db1.shop.example --vault-password-file vault-password.example | grep -i password
echo "== provisioning the shop (first run: installs everything)"
"$tend" run playbooks/site.yaml -i "$inv"
echo "== second run: nothing to change"
"$tend" run playbooks/site.yaml -i "$inv" 2>&1 | tail -7

lb=$(tests/lab/lab.sh address 1)   # with 5 hosts, h1 is the load balancer
echo "== the shop through the load balancer (http://$lb/)"
curl -s "http://$lb/"
echo "== which app server answered, over 6 requests"
for _ in 1 2 3 4 5 6; do curl -s "http://$lb/" | grep '^app:'; done | sort | uniq -c

echo "== schema migrations in migrations/: what the server would do to the live tables"
"$tend" migrate plan -i "$inv"

release=2-$(date +%H%M%S)
echo "== deploying release $release with its migrations, one app server at a time"
app/build.sh "$release" >/dev/null
"$tend" deploy --artifact "app/build/shop-$release.war" --release-id "$release" --migrate -i "$inv"
"$tend" releases -i "$inv"
"$tend" migrate info -i "$inv"

echo "== backups of the replica (its applier paused at one GTID), into the control node's store:"
echo "   logical (mariadb-dump) and physical (mariabackup)"
"$tend" backup run -i "$inv"
"$tend" backup run --kind physical -i "$inv"
echo "== the primary's binlogs shipped to the store (run it from cron every minute)"
"$tend" backup binlogs -i "$inv"
echo "== the newest backup proved: unpacked and prepared into a scratch server, checked, rolled forward"
"$tend" backup verify -i "$inv"
"$tend" backup status -i "$inv"
"$tend" backup list -i "$inv"
echo "== the plan of a point-in-time restore of the primary to this second (nothing is changed)"
"$tend" restore --target h4 --to-time "$(date -u '+%Y-%m-%d %H:%M:%SZ')" --dry-run -i "$inv"
curl -s "http://$lb/" | head -2

echo "== failover: the cluster as its servers say it is"
"$tend" failover status -i "$inv"
report="$(dirname "$inv")/failover-drill.html"
echo "== a switchover drill: writes probed through the database proxy while the replica takes over"
"$tend" failover drill --kind switchover --report "$report" -i "$inv"
echo "== and back to h4, a planned switchover (--force: the cool-down holds after a real one)"
"$tend" failover switchover --to h4 --force -i "$inv"
"$tend" failover history -i "$inv"
curl -s "http://$lb/" | head -2

echo "== the daily work: the hosts' logs into the local store, the routine checks, today's traffic"
"$tend" logs collect -i "$inv"
"$tend" check -i "$inv" || echo "(tend check exited $?: 6 is a warning, 7 critical)"
echo "   two orders placed on the primary, then today's report with its sales (read from the replica)"
"$tend" exec h4 -i "$inv" -- mariadb shop -e 'CALL place_order(1, 2); CALL place_order(3, 1)'
sleep 1
daily="$(dirname "$inv")/daily-report.html"
"$tend" report daily --date "$(date -u +%F)" -i "$inv" --html "$daily"
echo "== a load test through the balancer: 10 visitors a second for 10 s (open model)"
"$tend" loadtest loadtests/shop-browse.yaml --rate 10/s --duration 10s -i "$inv" \
    || echo "(tend loadtest exited $?: 8 is a broken threshold)"
echo "== and today's traffic replayed from the collected logs: each URL as often as it came"
"$tend" loadtest --from-logs "$(date -u +%F)" --rate 10/s --duration 5s -i "$inv" \
    || echo "(tend loadtest exited $?)"

cat <<EOT

Next:
  $tend --help                                   every command, with examples
  $tend run playbooks/site.yaml -i $inv --check --diff
  $tend rollback -i $inv                         back to the release before
  $tend migrate validate -i $inv                 applied migrations still match their files
  $tend exec app -i $inv -- 'tail -n 3 /var/lib/tomcat10/logs/catalina.out'
  ssh -F tests/lab/ssh_config h4 mariadb shop    the primary database
  $tend restore --target h4 --before "DROP TABLE orders" --dry-run -i $inv
  $tend backup prune --plan -i $inv
  $tend failover drill --kind kill-primary -i $inv    the primary killed; start it and rejoin it
  open $report                                   the drill's report
  open $daily                                    today's report: traffic, sales, tend's runs marked
  $tend loadtest loadtests/shop-browse.yaml --find-knee --rate 5/s --duration 10s -i $inv
  $tend deploy --artifact app/build/shop-$release.war --release-id $release-gated --load-gate loadtests/shop-browse.yaml -i $inv
  tests/lab/lab.sh down                          remove the lab
EOT
