#!/usr/bin/env python3
"""Runs the same workloads with tend, pyinfra and ansible-core on the lab, side by side.

Started by bench/run.sh, which brings up the lab, builds tend and installs the other tools in a
private virtualenv. Tools alternate within each round (the order rotates every round), so a
machine that gets busier or quieter affects every tool alike; the report gives medians and the
ratios tend/pyinfra and tend/ansible taken from the same rounds. See bench/README.md.

Memory: this process makes itself a child subreaper, so the ssh masters that tools start in
the background stay its descendants; it samples the resident memory of the whole process tree
and reaps (and, for ControlPersist leftovers, ends) them by pid after each run.
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
PR_SET_CHILD_SUBREAPER = 36
TOOLS = ("tend", "pyinfra", "ansible")


def make_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("bench: prctl(PR_SET_CHILD_SUBREAPER) failed")


def children_map():
    """ppid -> [pid] for every process (one /proc scan)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def run_measured(argv, env, log_path, cwd=None):
    """Runs argv; returns wall seconds, exit code, its own peak RSS (KB), the peak of the summed
    RSS of every process of the run (KB), and its stderr text."""
    me = os.getpid()
    with open(log_path, "wb") as log, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=err,
                                start_new_session=True)
        code, own_rss, tree_peak = None, 0, 0
        try:
            code, own_rss, tree_peak = sample_until_exit(proc, me)
        except BaseException:
            end_descendants(me)  # interrupted: leave nothing running
            raise
        wall = time.monotonic() - start
        end_descendants(me)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    with open(log_path, "ab") as log:
        log.write(b"\n--- stderr\n" + stderr.encode())
    return {"wall": wall, "code": code, "rss_kb": own_rss, "tree_kb": tree_peak, "stderr": stderr}


def sample_until_exit(proc, me):
    """Samples the tree's memory until `proc` exits, reaping every child on the way."""
    code, own_rss, tree_peak = None, 0, 0
    while code is None:
        tree = sum(rss_kb(p) for p in descendants(me))
        tree_peak = max(tree_peak, tree)
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == proc.pid:
                code = os.waitstatus_to_exitcode(status)
                own_rss = usage.ru_maxrss
                proc.returncode = code
        if code is None:
            time.sleep(0.05)
    return code, own_rss, tree_peak


def end_descendants(me):
    """Whatever a tool left running (ControlPersist masters) is ours: end it by pid, reap it."""
    for pid in descendants(me):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _, _ = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.02)


class Bench:
    def __init__(self, args):
        self.args = args
        self.lab = Path(args.lab_dir)
        self.inventory = self.lab / "inventory.yaml"
        self.venv = Path(args.venv)
        self.tend = str(Path(args.tend).resolve())
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.hosts = self.lab_hosts()
        if len(self.hosts) < args.hosts:
            sys.exit(f"bench: the lab has {len(self.hosts)} hosts, {args.hosts} wanted")
        self.hosts = self.hosts[: args.hosts]
        self.limit = ",".join(name for name, _ in self.hosts)
        # pyinfra reads templates relative to its working directory and leaves a debug log there.
        self.pyinfra_dir = self.out / "w1"
        shutil.rmtree(self.pyinfra_dir, ignore_errors=True)
        shutil.copytree(BENCH / "w1", self.pyinfra_dir)
        self.pyinfra_inventory = self.out / "pyinfra_inventory.py"
        self.write_pyinfra_inventory()
        self.results = []  # one dict per measured run

    def lab_hosts(self):
        names, current = [], None
        for line in self.inventory.read_text().splitlines():
            m = re.match(r"^        (h\d+):$", line)
            if m:
                current = m.group(1)
                continue
            m = re.match(r"^          ansible_host: (\S+)$", line)
            if m and current:
                names.append((current, m.group(1)))
                current = None
        return names

    def write_pyinfra_inventory(self):
        # The key pair is shared by every lab instance and sits next to lab.sh.
        key, known = self.lab.parent / "id_ed25519", self.lab / "known_hosts"
        data = {
            "ssh_user": "root",
            "ssh_key": str(key),
            "ssh_known_hosts_file": str(known),
            "ssh_strict_host_key_checking": "yes",
        }
        rows = ",\n".join(
            f"    ({addr!r}, {{**DATA, 'name': {name!r}}})" for name, addr in self.hosts
        )
        self.pyinfra_inventory.write_text(
            f"# Generated by bench/bench.py from {self.inventory}\nDATA = {data!r}\nlab = [\n{rows},\n]\n"
        )

    def env(self, tool):
        env = dict(os.environ)
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        env["NO_COLOR"] = "1"
        if tool == "tend":
            env["TEND_STATS"] = "1"
        if tool == "ansible":
            env["ANSIBLE_CONFIG"] = str(BENCH / "ansible" / "ansible.cfg")
            env["ANSIBLE_FORKS"] = str(len(self.hosts))
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = tempfile.mkdtemp(prefix="tb-", dir="/tmp")
            env["ANSIBLE_LOCAL_TEMP"] = tempfile.mkdtemp(prefix="tb-at-", dir="/tmp")
        return env

    def argv(self, tool, workload):
        n, inv = str(len(self.hosts)), str(self.inventory)
        if workload == "exec":
            return {
                "tend": [self.tend, "exec", "all", "-i", inv, "--limit", self.limit, "--forks", n, "--", "uptime"],
                "pyinfra": [str(self.venv / "bin/pyinfra"), str(self.pyinfra_inventory), "-y", "--parallel", n,
                            "exec", "--", "uptime"],
                "ansible": [str(self.venv / "bin/ansible"), "all", "-i", inv, "--limit", self.limit,
                            "-m", "command", "-a", "uptime"],
            }[tool]
        return {
            "tend": [self.tend, "run", str(BENCH / "w1/playbook.yaml"), "-i", inv, "--limit", self.limit,
                     "--forks", n],
            "pyinfra": [str(self.venv / "bin/pyinfra"), str(self.pyinfra_inventory), "-y", "--parallel", n,
                        "deploy.py"],
            "ansible": [str(self.venv / "bin/ansible-playbook"), "-i", inv, "--limit", self.limit,
                        str(BENCH / "w1/playbook.yaml")],
        }[tool]

    def reset_hosts(self):
        """Removes what W1 made, so the next first run changes everything again (not timed)."""
        r = subprocess.run(
            [self.tend, "exec", "all", "-i", str(self.inventory), "--limit", self.limit, "--forks",
             str(len(self.hosts)), "--", "rm -rf /srv/bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"bench: resetting the hosts failed: {r.stderr}")

    def check_hosts(self, tool):
        """After a first run, every host must have what W1 makes (a tool that did nothing and
        exited 0 must not look fast)."""
        made = ["/srv/bench/app/motd.txt", "/srv/bench/conf/app.conf", "/srv/bench/current/",
                "/srv/bench/conf/limits.conf", "/srv/bench/installed.stamp"]
        test = " && ".join(f"test -e {p}" for p in made) + " && grep -qx max_connections=200 /srv/bench/conf/limits.conf"
        r = subprocess.run(
            [self.tend, "exec", "all", "-i", str(self.inventory), "--limit", self.limit, "--forks",
             str(len(self.hosts)), "--", test],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"bench: after {tool}'s first W1 run some hosts lack its files: {r.stderr}")

    def measure(self, rnd, tool, workload, phase):
        log = self.out / f"{workload}-{phase}-{tool}-r{rnd}.log"
        cwd = self.pyinfra_dir if tool == "pyinfra" else None
        r = run_measured(self.argv(tool, workload), self.env(tool), log, cwd=cwd)
        r.update(round=rnd, tool=tool, workload=workload, phase=phase, hosts=len(self.hosts))
        stats = re.search(r"^tend-stats: (\{.*\})$", r["stderr"], re.M)
        if stats:
            r["tend_stats"] = json.loads(stats.group(1))
            # wait4's peak covers the short-lived `ssh` launchers tend waits for; tend's own:
            r["rss_kb"] = r["tend_stats"]["max_rss_kb"]
        if tool == "pyinfra" and "is neither an inventory file" in r["stderr"]:
            r["code"] = r["code"] or 98  # pyinfra exits 0 when its inventory does not load
        del r["stderr"]
        status = "ok" if r["code"] == 0 else f"EXIT {r['code']} (see {log})"
        print(f"  r{rnd} {workload:<4} {phase:<6} {tool:<8} {r['wall']:7.2f}s  rss {r['rss_kb'] / 1024:6.1f} MB"
              f"  tree {r['tree_kb'] / 1024:7.1f} MB  {status}", flush=True)
        self.results.append(r)
        return r

    def run(self):
        a = self.args
        tools = [t for t in TOOLS if t in a.tools.split(",")]
        for rnd in range(1, a.rounds + 1):
            order = tools[(rnd - 1) % len(tools):] + tools[: (rnd - 1) % len(tools)]
            print(f"round {rnd}/{a.rounds} ({len(self.hosts)} hosts): {' '.join(order)}", flush=True)
            for tool in order:
                if tool == "ansible" and rnd > a.ansible_rounds:
                    continue
                if "w1" in a.workloads:
                    self.reset_hosts()
                    self.measure(rnd, tool, "w1", "first")
                    self.check_hosts(tool)
                    self.measure(rnd, tool, "w1", "second")
                if "exec" in a.workloads:
                    self.measure(rnd, tool, "exec", "exec")
        path = self.out / "results.json"
        path.write_text(json.dumps(self.results, indent=1))
        print(f"raw results: {path}")
        print(report(self.results))


def median(xs):
    return statistics.median(xs) if xs else None


def report(results):
    """A markdown table: medians per tool, ratios per round (then their median)."""
    lines = []
    hosts = sorted({r["hosts"] for r in results})
    for n in hosts:
        rows = [r for r in results if r["hosts"] == n]
        order = ("first", "second", "exec")
        keys = sorted({(r["workload"], r["phase"]) for r in rows}, key=lambda k: order.index(k[1]))
        lines.append(f"\n{n} hosts ({len({r['round'] for r in rows})} rounds; medians; ratios are per-round medians)\n")
        lines.append("| workload | tend s | pyinfra s | ansible s | tend/pyinfra | tend/ansible | tend peak RSS MB | "
                     "tend tree RSS MB | pyinfra RSS MB | ansible RSS MB (tree) | tend channels/host-task |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for wl, phase in keys:
            sel = [r for r in rows if r["workload"] == wl and r["phase"] == phase and r["code"] == 0]
            by = {t: [r for r in sel if r["tool"] == t] for t in TOOLS}
            wall = {t: median([r["wall"] for r in by[t]]) for t in TOOLS}

            def ratio(other):
                per_round = []
                for r in by["tend"]:
                    o = [x for x in by[other] if x["round"] == r["round"]]
                    if o:
                        per_round.append(r["wall"] / o[0]["wall"])
                m = median(per_round)
                return f"{m:.3f}" if m is not None else "-"

            def fmt(x, digits=2):
                return f"{x:.{digits}f}" if x is not None else "-"

            tasks = 10 if wl == "w1" else 1
            chans = [r["tend_stats"]["channels"] / (n * tasks) for r in by["tend"] if "tend_stats" in r]
            label = {"first": "W1 first run", "second": "W1 second run", "exec": "W3 exec"}[phase]
            lines.append(
                f"| {label} | {fmt(wall['tend'])} | {fmt(wall['pyinfra'])} | {fmt(wall['ansible'])} | "
                f"{ratio('pyinfra')} | {ratio('ansible')} | "
                f"{fmt(median([r['rss_kb'] / 1024 for r in by['tend']]), 1)} | "
                f"{fmt(median([r['tree_kb'] / 1024 for r in by['tend']]), 0)} | "
                f"{fmt(median([r['rss_kb'] / 1024 for r in by['pyinfra']]), 0)} | "
                f"{fmt(median([r['rss_kb'] / 1024 for r in by['ansible']]), 0)} "
                f"({fmt(median([r['tree_kb'] / 1024 for r in by['ansible']]), 0)}) | "
                f"{fmt(median(chans), 2)} |"
            )
        firsts = [r for r in rows if r["tool"] == "tend" and r["phase"] == "first" and r["code"] == 0]
        seconds = [r for r in rows if r["tool"] == "tend" and r["phase"] == "second" and r["code"] == 0]
        pairs = [s["wall"] / f["wall"] for f in firsts for s in seconds if s["round"] == f["round"]]
        if pairs:
            lines.append(f"\ntend second/first run (W1): {median(pairs):.3f}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ansible-rounds", type=int, default=3, help="ansible-core runs in the first K rounds only")
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--workloads", default="w1,exec")
    instance = os.environ.get("TENDLAB_INSTANCE", "1")
    p.add_argument("--lab-dir", default=str(REPO / "tests/lab" / f"instance{instance}"))
    p.add_argument("--venv", default="/var/tmp/tend-bench/venv")
    p.add_argument("--tend", default=str(REPO / "target/release/tend"))
    p.add_argument("--out", default=str(REPO / "target/bench"))
    p.add_argument("--report", metavar="RESULTS_JSON", help="only print the table of earlier results")
    args = p.parse_args()
    if args.report:
        results = []
        for path in args.report.split(","):
            results += json.loads(Path(path).read_text())
        print(report(results))
        return
    make_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # end the tools' processes too
    Bench(args).run()


if __name__ == "__main__":
    main()
