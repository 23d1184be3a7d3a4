#!/usr/bin/env bash
# bench/run.sh - tend side by side with pyinfra and ansible-core on lab hosts (bench/README.md).
#
#   bench/run.sh [N [ROUNDS]]     N lab hosts (default 50), ROUNDS rounds (default 3)
#   bench/run.sh --smoke          3 hosts, 1 round, tend only: checks that the benchmark works
#
# Needs root (the lab). Uses its own lab instance (TENDLAB_INSTANCE, default 1: bridge tendlab1,
# 10.78.0.0/16), never the test suite's, and leaves it up for the next run; tear it down with
# `TENDLAB_INSTANCE=1 tests/lab/lab.sh down`. ansible-core and pyinfra are installed from PyPI
# into a private virtualenv (BENCH_VENV, default /var/tmp/tend-bench/venv). Extra arguments after
# `--` go to bench.py (e.g. `-- --tools tend,pyinfra --ansible-rounds 1`).
# Not part of CI: a full run takes minutes (ansible-core alone ~3 min per W1 run on 50 hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

export TENDLAB_INSTANCE=${TENDLAB_INSTANCE:-1}
VENV=${BENCH_VENV:-/var/tmp/tend-bench/venv}
OUT=${BENCH_OUT:-target/bench}

hosts=50 rounds=3 extra=()
if [[ ${1:-} == --smoke ]]; then
    shift
    hosts=3 rounds=1 extra=(--tools tend)
fi
if [[ ${1:-} =~ ^[0-9]+$ ]]; then hosts=$1; shift; fi
if [[ ${1:-} =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
if [[ ${1:-} == -- ]]; then shift; extra+=("$@"); fi

cargo build --release --locked --quiet

if [[ " ${extra[*]} " != *" --tools tend "* ]]; then
    if [[ ! -x $VENV/bin/ansible-playbook || ! -x $VENV/bin/pyinfra ]]; then
        echo "bench: installing ansible-core and pyinfra into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet ansible-core pyinfra
    fi
    "$VENV/bin/ansible" --version | sed -n 1p   # sed reads it all: no broken pipe
    "$VENV/bin/pyinfra" --version
fi

# Bench hosts need only sshd. A larger lab is used as it is (bench.py takes its first N hosts).
have=$(tests/lab/lab.sh status 2>/dev/null | grep -c 'sshd up' || true)
if ((have < hosts)); then
    tests/lab/lab.sh up "$hosts"
fi

python3 bench/bench.py --hosts "$hosts" --rounds "$rounds" --venv "$VENV" \
    --out "$OUT/$hosts" "${extra[@]}"
