#!/usr/bin/env bash
# tend's load generator against oha (crates.io) and wrk (Debian) on the same target, side by
# side in one run:
#   1. the most requests a second each makes on one core (50 connections, closed loop; best
#      of 3 rounds run in turn, as the machine's speed drifts between runs);
#   2. latency percentiles at a fixed rate below saturation (tend's open model and oha's
#      --latency-correction; wrk cannot hold a rate, and wrk2 is not in Debian), against two
#      pages: one answered from memory (~0.1 ms: what is left is each generator's own overhead,
#      compared in microseconds), and one held 1-9 ms by nginx's echo module, the delay drawn
#      uniformly by each generator from the same nine URLs (a page of a shop's speed: compared
#      as ratios, the goal is within 10 %);
#   3. memory per concurrent user (peak RSS with 100 and with 1000 users).
# The target is nginx from Debian's package, unpacked here (not installed), one worker pinned
# to core 1 answering "ok" from memory; every generator is pinned to core 0.
#
#   bench/loadtest.sh [SECONDS] [RATE]     # default 10 s per run, 2000 requests/s (root)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rate=${2:-2000}
work=$PWD/target/bench/loadtest
mkdir -p "$work"
export DEBIAN_FRONTEND=noninteractive
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
if [ ! -f "$work/nginx/usr/lib/nginx/modules/ngx_http_echo_module.so" ]; then
    (cd "$work" && apt-get download -qq nginx libnginx-mod-http-echo 2>/dev/null \
        && dpkg -x nginx_*.deb nginx && dpkg -x libnginx-mod-http-echo_*.deb nginx)
fi
if [ ! -x "$work/oha/bin/oha" ]; then
    echo "building oha from crates.io (once)" >&2
    CARGO_TARGET_DIR="$work/oha-build" cargo install oha --locked --quiet --root "$work/oha"
fi
cargo build --release --locked -q
tend=$PWD/target/release/tend
oha=$work/oha/bin/oha

port=18088
mkdir -p "$work/www"
cat > "$work/www/nginx.conf" <<CONF
load_module $work/nginx/usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
daemon off;
pid $work/www/nginx.pid;
error_log $work/www/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $work/www/body; proxy_temp_path $work/www/proxy;
  fastcgi_temp_path $work/www/fcgi; uwsgi_temp_path $work/www/uwsgi; scgi_temp_path $work/www/scgi;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok\n"; }
    location ~ ^/sleep/([1-9])\$ { echo_sleep 0.00\$1; echo ok; }
  }
}
CONF
taskset -c 1 "$work/nginx/usr/sbin/nginx" -p "$work/www" -c "$work/www/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/"
printf 'name: hello\njourneys:\n  - steps:\n      - {path: /}\n' > "$work/hello.yaml"
printf 'name: sleep\nvars: {ms: [1, 2, 3, 4, 5, 6, 7, 8, 9]}\njourneys:\n  - steps:\n      - {path: "/sleep/{{ ms }}"}\n' > "$work/sleep.yaml"
curl -sf "http://127.0.0.1:$port/sleep/1" >/dev/null
one() { TOKIO_WORKER_THREADS=1 taskset -c 0 "$@"; }

echo "== 1. most requests a second, one core, 50 connections, ${secs}s each, 3 rounds in turn" >&2
for round in 1 2 3; do
    one wrk -t1 -c50 -d"${secs}s" "$url" > "$work/wrk-$round.txt"
    one "$oha" -z "${secs}s" -c 50 --no-tui --output-format json "$url" > "$work/oha-max-$round.json"
    one "$tend" loadtest "$work/hello.yaml" --users 50 --duration "${secs}s" --base-url "${url%/}" --format json --log-dir "$work/runs" > "$work/tend-max-$round.jsonl"
done

echo "== 2. latency at $rate requests/s, ${secs}s each" >&2
one "$oha" -z "${secs}s" -q "$rate" -c 200 --latency-correction --no-tui --output-format json "$url" > "$work/oha-rate.json"
one "$tend" loadtest "$work/hello.yaml" --rate "$rate/s" --duration "${secs}s" --base-url "${url%/}" --format json --log-dir "$work/runs" > "$work/tend-rate.jsonl"
one "$oha" -z "${secs}s" -q "$rate" -c 200 --latency-correction --no-tui --output-format json --rand-regex-url "${url}sleep/[1-9]" > "$work/oha-sleep.json"
one "$tend" loadtest "$work/sleep.yaml" --rate "$rate/s" --duration "${secs}s" --base-url "${url%/}" --format json --log-dir "$work/runs" > "$work/tend-sleep.jsonl"

echo "== 3. memory per concurrent user" >&2
for users in 100 1000; do
    /usr/bin/time -f "%M" -o "$work/tend-rss-$users" taskset -c 0 "$tend" loadtest "$work/hello.yaml" --users "$users" --duration 5s --base-url "${url%/}" --format json --log-dir "$work/runs" > /dev/null
    /usr/bin/time -f "%M" -o "$work/oha-rss-$users" taskset -c 0 "$oha" -z 5s -c "$users" --no-tui --output-format json "$url" > /dev/null
done

python3 - "$work" "$rate" <<'PY'
import json, re, sys
work, rate = sys.argv[1], int(sys.argv[2])
def record(path):
    for line in open(path):
        v = json.loads(line)
        if v.get("event") == "record":
            return v
    sys.exit(f"no record in {path}")
rounds = [1, 2, 3]
wrk = [float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{work}/wrk-{r}.txt").read()).group(1)) for r in rounds]
oha_max = [json.load(open(f"{work}/oha-max-{r}.json"))["summary"]["requestsPerSec"] for r in rounds]
tend_max = [record(f"{work}/tend-max-{r}.jsonl")["rate"] for r in rounds]
best = max(max(wrk), max(oha_max))
print("1. most requests a second on one core (50 connections), best of 3 rounds run in turn")
print(f"   {'tool':<6} {'best':>10} {'vs the faster':>14}   rounds")
for name, v in [("wrk", wrk), ("oha", oha_max), ("tend", tend_max)]:
    print(f"   {name:<6} {max(v):>10,.0f} {max(v) / best:>13.2f}x   {' '.join(f'{x:,.0f}' for x in v)}")
# The machine's speed drifts between rounds: each round's tools ran one after the other.
per_round = sorted(t / max(w, o) for t, w, o in zip(tend_max, wrk, oha_max))
print(f"   tend vs the faster, round by round: {' '.join(f'{x:.2f}x' for x in per_round)} (median {per_round[1]:.2f}x)")
print(f"2. latency at {rate} requests/s (ms; tend from when each request was due, oha from when its timer fired)")
for page, o_file, t_file in [("/ (from memory)", "oha-rate.json", "tend-rate.jsonl"), ("/sleep/1-9 ms", "oha-sleep.json", "tend-sleep.jsonl")]:
    oha = json.load(open(f"{work}/{o_file}"))
    op = oha["latencyPercentiles"]
    t = record(f"{work}/{t_file}")
    tp = t["latency_ms"]
    oks = oha["summary"]["successRate"]
    if set(oha["statusCodeDistribution"]) != {"200"} or t["errors"]:
        sys.exit(f"{page}: not every answer was 200 (oha {oha['statusCodeDistribution']}, tend {t['errors']} errors)")
    print(f"   {page:<16} {'tend':>8} {'oha':>8} {'tend/oha':>9} {'tend-oha':>9}   (requests: tend {t['requests']}, {t['errors']} errors; oha success {oks:.3f})")
    for key in ["p50", "p90", "p99"]:
        o = op[key] * 1000
        print(f"   {key:<16} {tp[key]:>8.3f} {o:>8.3f} {tp[key] / o if o else 0:>8.2f}x {tp[key] - o:>+9.3f}")
def rss(tool, users):
    return int(open(f"{work}/{tool}-rss-{users}").read().split()[-1])
print("3. memory per concurrent user (peak RSS, 100 and 1000 users)")
for tool in ["tend", "oha"]:
    a, b = rss(tool, 100), rss(tool, 1000)
    print(f"   {tool:<5} {a / 1024:>7.1f} MiB / {b / 1024:>7.1f} MiB: {(b - a) / 900:>6.1f} KiB a user")
PY
