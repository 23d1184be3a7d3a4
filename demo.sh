#!/usr/bin/env bash
# The main job on a fresh Debian machine (root): build tend, start a 5-host lab of real SSH
# hosts, and work on them. Later phases add provisioning of the shop stack and a release deploy.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --locked
tend=target/release/tend
tests/lab/lab.sh up 5
inv=$(tests/lab/lab.sh inventory)

echo; echo "== the lab inventory"
"$tend" inventory -i "$inv" --graph
echo "== one command on every host"
"$tend" exec all -i "$inv" -- 'echo "$(hostname): $(uname -sr), up $(cut -d. -f1 /proc/uptime)s"'
echo "== a file placed atomically on the app servers (second run: unchanged)"
printf 'JAVA_OPTS="-Xmx512m"\n' > /tmp/tend-demo-setenv.sh
"$tend" upload app -i "$inv" /tmp/tend-demo-setenv.sh /root/setenv.sh --mode 0640
"$tend" upload app -i "$inv" /tmp/tend-demo-setenv.sh /root/setenv.sh --mode 0640

cat <<EOT

Next:
  $tend --help                                  every command, with examples
  $tend exec 'lab:!h1' -i $inv -- uptime
  $tend exec all -i $inv --format json -- id    one JSON object per host
  ssh -F tests/lab/ssh_config h1                log into a lab host
  tests/lab/lab.sh down                         remove the lab
EOT
