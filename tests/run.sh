#!/usr/bin/env bash
# The whole test suite: build once, start a fresh 11-host lab (h1-h4 for module tests, h5-h6
# for the corpus roles, h7-h11 the shop), run every test against it, and
# always tear the lab down. Needs root (the lab uses network namespaces and overlay mounts).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --all-targets --locked
# The reference for tend's Ansible compatibility: ansible-core from PyPI, in a virtualenv, with
# the `ansible` package's collections (community.general, ansible.posix) for their modules.
venv=${TEND_TEST_VENV:-/var/tmp/tend-test-venv}
if ! "$venv/bin/python" -c 'import ansible_collections.community.general' 2>/dev/null; then
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'ansible-core==2.19.*' 'ansible==12.*'
fi
export TEND_ANSIBLE_BIN="$venv/bin"
# A lab left over from an interrupted run is removed first: tests start from fresh hosts.
tests/lab/lab.sh down >/dev/null
trap 'tests/lab/lab.sh down >/dev/null' EXIT
tests/lab/lab.sh up 11

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast "$@"
else
    cargo test --locked --no-fail-fast "$@"
fi
