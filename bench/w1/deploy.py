"""W1 for pyinfra: the same ten tasks as w1/playbook.yaml (bench/README.md)."""

from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

ROOT = "/srv/bench"
RELEASE = "1"

files.directory(name="app directory", path=f"{ROOT}/app", mode="755")
files.directory(name="config directory", path=f"{ROOT}/conf", mode="755")
files.put(
    name="inline file",
    src=StringIO(f"# managed by the benchmark\nmotd=hello from {host.name}\n"),
    dest=f"{ROOT}/app/motd.txt",
    mode="644",
)
files.template(
    name="template",
    src="templates/app.conf.j2",
    dest=f"{ROOT}/conf/app.conf",
    mode="644",
    inventory_hostname=host.name,
    bench_release=RELEASE,
    bench_root=ROOT,
)
files.directory(name="release directory", path=f"{ROOT}/releases/{RELEASE}", mode="755")
files.link(name="current release", path=f"{ROOT}/current", target=f"{ROOT}/releases/{RELEASE}")
files.line(name="a line in a file", path=f"{ROOT}/conf/limits.conf", line="max_connections=200")
server.shell(name="a command", commands=["cat /etc/hostname"])
server.shell(
    name="a shell with creates",
    commands=[f"test -e {ROOT}/installed.stamp || date > {ROOT}/installed.stamp"],
)
# stat: a read-only fact, as Ansible's stat module is.
host.get_fact(File, path=f"{ROOT}/conf/app.conf")
