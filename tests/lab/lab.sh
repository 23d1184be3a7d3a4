#!/usr/bin/env bash
# tests/lab/lab.sh - real SSH test hosts on one Linux machine (see README.md next to this file).
#
# A lab host hN is a network namespace (tendlab-hN, eth0 on bridge tendlab0) plus mount/uts/pid
# namespaces holding a copy-on-write overlay of the machine's / and its own sshd.
set -euo pipefail
if [[ ${TENDLAB_TRACE:-0} == 1 ]]; then  # debugging: timestamped xtrace (hosts: in their holder.log)
    PS4='+ ${EPOCHREALTIME} ${BASHPID} '
    set -x
fi

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
LAB_SH="$LAB_DIR/lab.sh"
REPO_DIR=$(cd "$LAB_DIR/../.." && pwd -P)
# TENDLAB_INSTANCE=K (1..9) selects a second, independent lab beside the default one (0): its
# own bridge, namespaces, veths, subnet 10.(77+K).0.0/16, host dirs and lock. The default
# instance keeps the names and addresses it always had.
INSTANCE=${TENDLAB_INSTANCE:-0}
if [[ ! $INSTANCE =~ ^[0-9]$ ]]; then
    echo "lab.sh: TENDLAB_INSTANCE must be a digit 0..9, not '$INSTANCE'" >&2
    exit 2
fi
NET=10.$((77 + INSTANCE))              # the instance's /16
if ((INSTANCE == 0)); then
    SUFFIX='' NS_PREFIX=tendlab-h VETH_PREFIX=tlv
else
    SUFFIX=$INSTANCE NS_PREFIX=tendlab$INSTANCE-h VETH_PREFIX=tl${INSTANCE}v
fi
BASE=/var/tmp/tendlab$SUFFIX          # per-host dirs: $BASE/hN/{upper,work,root}
LOCK=/var/tmp/tendlab$SUFFIX.lock
BRIDGE=tendlab$INSTANCE
BRIDGE_ADDR=$NET.0.1/16
BRIDGE_MAC=02:$((77 + INSTANCE)):00:00:00:01
MAX_HOSTS=1000
ARCHIVES=/var/cache/apt/archives
KEY="$LAB_DIR/id_ed25519"             # one key pair for every instance
# Generated per instance: the default one's files sit next to lab.sh, instance K's in instanceK/,
# so two labs run from one checkout never overwrite each other's inventory or known_hosts.
if ((INSTANCE == 0)); then GEN_DIR=$LAB_DIR; else GEN_DIR=$LAB_DIR/instance$INSTANCE; fi
KNOWN_HOSTS="$GEN_DIR/known_hosts"
SSH_CONFIG="$GEN_DIR/ssh_config"
INVENTORY="$GEN_DIR/inventory.yaml"
# Installed on the machine: openssh-server (the hosts' sshd comes from the machine's / ).
# Downloaded only (installed later inside hosts, offline, from $ARCHIVES):
# memcached, haproxy and apache2 are for the corpus roles that tests/lab_corpus.rs runs.
PACKAGES=(openssh-server sudo mariadb-server mariadb-client mariadb-backup nginx libnginx-mod-stream tomcat10
          libmariadb-java curl rsync memcached haproxy apache2)
# Packages a test removes inside a host and installs again, offline: their .deb must be in the
# cache even when the machine has them installed (docker-clean deletes what an install fetched).
REINSTALLED=(rsync)
PARALLEL=${TENDLAB_PARALLEL:-24}
HOST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() {
    cat <<EOF
Usage: lab.sh COMMAND [ARGS]

Real test hosts for tend: each host hN is a network namespace with address $NET.X.Y on bridge
$BRIDGE ($BRIDGE_ADDR), its own copy-on-write root (overlay over /) and its own sshd.
Everything except --help needs root. TENDLAB_INSTANCE=K (1..9) selects an independent second
lab (bridge tendlabK, namespaces tendlabK-hN, subnet 10.(77+K).0.0/16, dirs /var/tmp/tendlabK);
this one is instance $INSTANCE.

Commands:
  up N             create hosts h1..hN (1 <= N <= $MAX_HOSTS), keep healthy existing ones, wait until
                   every sshd accepts logins, write known_hosts, ssh_config and inventory.yaml here.
                   Refuses (exit 1) if a host is half-existing: run 'lab.sh down' first.
  down             remove all hosts, veths, namespaces, the bridge, host dirs and generated files
                   (keeps the key pair and the apt cache). Idempotent.
  status           one line per host: name, address, sshd up|down|broken. Always exits 0.
  inventory        print the absolute path of the generated Ansible inventory (exit 1 if lab is down).
  address I        print the address of host hI.
  sshd-stop I      kill every sshd process of host hI (listener and sessions); the host keeps running.
  sshd-start I     start the sshd of host hI again and wait until it accepts connections.
  exec I CMD...    run CMD (argv, no shell) inside host hI as root, without ssh (nsenter + chroot),
                   with a clean environment; stdin/stdout/stderr and exit status pass through.
  --help           this text.

Files (absolute paths inside, usable from any directory):
  $KEY(.pub)   lab key pair (generated once, kept by down)
  $SSH_CONFIG    ssh -F $SSH_CONFIG h1 true
  $KNOWN_HOSTS   the hosts' ed25519 keys, by address
  $INVENTORY  Ansible YAML inventory (group lab; with N >= 5 also lb, app, db)
EOF
}

die() { echo "lab.sh: $*" >&2; exit 1; }
warn() { echo "lab.sh: $*" >&2; }
info() { echo "lab.sh: $*"; }
T0=$EPOCHREALTIME
phase() {  # progress with elapsed time, only with TENDLAB_VERBOSE=1
    [[ ${TENDLAB_VERBOSE:-0} == 1 ]] || return 0
    awk -v a="$T0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "lab.sh: [%6.2fs] %s\n", b - a, m}' >&2
}

give_to_sudo_user() {  # files: under sudo, the invoking user must be able to use the lab files
    if [[ -n ${SUDO_UID:-} && ${SUDO_UID} != 0 ]]; then chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$@"; fi
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, overlay mounts)"
}

# Host i -> 10.77.(i/200).(i%200+10): 10.77.0.11 .. 10.77.0.209, 10.77.1.10 .., h1000 = 10.77.5.10
# (10.78.* for instance 1, and so on).
addr_of() { echo "$NET.$(($1 / 200)).$(($1 % 200 + 10))"; }
addr_var() { printf -v "$1" '%s.%d.%d' "$NET" $(($2 / 200)) $(($2 % 200 + 10)); }  # VAR i

check_index() {
    if [[ ! ${1:-} =~ ^[1-9][0-9]*$ ]] || (($1 > MAX_HOSTS)); then
        die "bad host number '${1:-}' (1..$MAX_HOSTS)"
    fi
}

lock() {
    exec 9>"$LOCK"
    flock -w 300 9 || die "another lab.sh is running (lock $LOCK)"
}

# Indexes of every host that has any trace (namespace, veth, dir), sorted.
existing_indexes() {
    local f n
    {
        for f in /run/netns/"$NS_PREFIX"* /sys/class/net/"$VETH_PREFIX"* "$BASE"/h*; do
            [[ -e $f ]] || continue
            n=${f##*/}; n=${n#"$NS_PREFIX"}; n=${n#"$VETH_PREFIX"}; n=${n#h}
            [[ $n =~ ^[0-9]+$ ]] && echo "$n"
        done
    } | sort -n -u
}

is_ns_init() {  # pid -> 0 if it is pid 1 of its (non-initial) pid namespace
    local k b _
    while read -r k _ b _; do
        [[ $k == NSpid: ]] && { [[ $b == 1 ]]; return; }
    done 2>/dev/null <"/proc/$1/status"
    return 1
}

# pid 1 of host i's pid namespace, as seen from the machine (empty if none). Builtins only.
holder_pid() {
    local pid=''
    read -r pid 2>/dev/null <"$BASE/h$1/holder.pid" || true
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    # Must still be the namespace init and live in the host's network namespace.
    is_ns_init "$pid" && [[ /proc/$pid/ns/net -ef /run/netns/$NS_PREFIX$1 ]] && echo "$pid"
    return 0
}

# Prints "absent", "ok", or "broken: <reason>".
host_state() {
    local i=$1 ns=/run/netns/$NS_PREFIX$1 veth=/sys/class/net/$VETH_PREFIX$1 dir=$BASE/h$1 missing=()
    [[ -e $ns || -e $veth || -e $dir ]] || { echo absent; return; }
    [[ -e $ns ]] || missing+=("namespace $NS_PREFIX$i")
    [[ -e $veth ]] || missing+=("veth $VETH_PREFIX$i")
    [[ -d $dir ]] || missing+=("dir $dir")
    if ((${#missing[@]})); then echo "broken: missing ${missing[*]}"; return; fi
    [[ $veth/master -ef /sys/class/net/$BRIDGE ]] || { echo "broken: veth not on $BRIDGE"; return; }
    [[ -e $dir/ready ]] || { echo "broken: host setup never finished"; return; }
    [[ -n $(holder_pid "$i") ]] || { echo "broken: holder process is gone"; return; }
    echo ok
}

port_open() {  # address -> 0 if something accepts on :22 (lab addresses answer or refuse at once)
    (exec 3<>"/dev/tcp/$1/22") 2>/dev/null
}

wait_port() {  # address seconds
    local deadline=$((SECONDS + $2))
    until port_open "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------------------------
# Packages

pkg_ready() {  # its .deb is in the apt cache, or it is installed on the machine and no test reinstalls it
    compgen -G "$ARCHIVES/$1_*.deb" >/dev/null && return 0
    [[ " ${REINSTALLED[*]} " == *" $1 "* ]] && return 1
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

packages_ready() {
    local p
    [[ -x /usr/sbin/sshd ]] || return 1
    for p in "${PACKAGES[@]}"; do pkg_ready "$p" || return 1; done
}

wait_for_apt() {
    local said=0 deadline=$((SECONDS + 1200))
    while pgrep -x apt-get >/dev/null || pgrep -x apt >/dev/null || pgrep -x dpkg >/dev/null; do
        ((said)) || { info "waiting for a running apt/dpkg to finish..."; said=1; }
        ((SECONDS < deadline)) || die "apt/dpkg still running after 20 min"
        sleep 2
    done
}

apt_get() {  # apt-get with one 'apt-get update' retry (lists missing or stale)
    local lists
    lists=$(compgen -G '/var/lib/apt/lists/*_Packages*' || true)
    if [[ -z $lists ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get -q update >&2 || die "apt-get update failed"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -q "$@" >&2 && return 0
    warn "apt-get $* failed; running apt-get update and retrying"
    DEBIAN_FRONTEND=noninteractive apt-get -q update >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get -q "$@" >&2 || die "apt-get $* failed"
}

ensure_packages() {
    packages_ready && return 0
    # Pitfall 2: files added to the lower layer after an overlay is mounted cannot be opened inside.
    [[ -z $(existing_indexes) ]] || die "packages are missing on the machine but lab hosts exist; run 'lab.sh down' first"
    wait_for_apt
    if [[ ! -x /usr/sbin/sshd ]]; then
        info "installing openssh-server on the machine (the hosts' sshd comes from the machine's /)"
        # /etc/apt/apt.conf.d/docker-clean deletes every cached .deb after an install: keep
        # hard links to what is already downloaded and put them back afterwards.
        local keep=/var/cache/apt/tendlab-keep f
        rm -rf "$keep"; mkdir -p "$keep"
        for f in "$ARCHIVES"/*.deb; do
            if [[ -e $f ]]; then ln -f "$f" "$keep/"; fi
        done
        apt_get install -y openssh-server
        for f in "$keep"/*.deb; do
            if [[ -e $f && ! -e $ARCHIVES/${f##*/} ]]; then ln "$f" "$ARCHIVES/"; fi
        done
        rm -rf "$keep"
        [[ -x /usr/sbin/sshd ]] || die "openssh-server installed but /usr/sbin/sshd is missing"
    fi
    info "downloading packages for offline installs inside hosts into $ARCHIVES"
    apt_get install -y --download-only "${PACKAGES[@]}"
    # An installed package at its candidate version is not fetched without --reinstall.
    apt_get install -y --download-only --reinstall "${REINSTALLED[@]}"
    compgen -G "$ARCHIVES/mariadb-server_*.deb" >/dev/null \
        || die "no mariadb-server*.deb in $ARCHIVES after the download (something deleted it; see /etc/apt/apt.conf.d/docker-clean)"
    local p missing=()
    for p in "${PACKAGES[@]}"; do pkg_ready "$p" || missing+=("$p"); done
    ((${#missing[@]} == 0)) || die "not in $ARCHIVES after the download: ${missing[*]}"
}

ensure_tools() {
    local t missing=()
    for t in ip unshare nsenter setsid chroot flock ssh ssh-keygen timeout; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]}"
}

ensure_keypair() {
    if [[ ! -f $KEY || ! -f $KEY.pub ]]; then
        rm -f "$KEY" "$KEY.pub"
        ssh-keygen -q -t ed25519 -N '' -C tendlab -f "$KEY"
        info "generated lab key pair $KEY"
    fi
    chmod 600 "$KEY"
    give_to_sudo_user "$KEY" "$KEY.pub"
}

ensure_bridge() {
    if [[ ! -e /sys/class/net/$BRIDGE ]]; then
        ip link add "$BRIDGE" address "$BRIDGE_MAC" type bridge
    fi
    ip -br addr show dev "$BRIDGE" | grep -qF "${BRIDGE_ADDR}" || ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
    ip link set "$BRIDGE" up
}

# ---------------------------------------------------------------------------------------------
# Host creation

set_opaque() {  # mark an upper dir opaque: the machine's dir below it is hidden in the host
    if command -v setfattr >/dev/null; then
        setfattr -n trusted.overlay.opaque -v y "$1"
    elif [[ -x /usr/bin/python3 ]]; then
        /usr/bin/python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$1"
    else
        warn "neither setfattr nor python3: hosts will see the machine's /root"
    fi
}

write_sshd_config() {
    cat >"$1" <<'CONF'
# tend lab host (written by tests/lab/lab.sh)
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
UseDNS no
X11Forwarding no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
# Fleet tests open dozens of connections to one lab host at once.
MaxStartups 200
MaxSessions 64
CONF
}

# What every new host's upper layer starts with; copied with cp -a, which keeps the whiteouts
# (char device 0:0 = file deleted in the host) and the opaque /root.
make_template() {
    local t=$BASE/.template f
    rm -rf "$t"
    mkdir -p "$t/etc/ssh" "$t/etc/apt/apt.conf.d" "$t/root/.ssh"
    chmod 0700 "$t/root" "$t/root/.ssh"
    set_opaque "$t/root"     # a fresh /root, not the machine's (pyenv, caches, tokens)
    cp /etc/skel/.bashrc /etc/skel/.profile "$t/root/"              # pitfall 4: plain dotfiles
    install -m 0600 "$KEY.pub" "$t/root/.ssh/authorized_keys"
    write_sshd_config "$t/etc/ssh/sshd_config"
    for f in /etc/ssh/ssh_host_*; do                                # the machine's host keys
        if [[ -e $f && $f != */ssh_host_ed25519_key* ]]; then mknod "$t$f" c 0 0; fi
    done
    if [[ -e /etc/apt/apt.conf.d/docker-clean ]]; then               # pitfall 3
        mknod "$t/etc/apt/apt.conf.d/docker-clean" c 0 0
    fi
}

# Runs in the background, one per new host. Already there: namespace $NS_PREFIX$i with eth0
# (veth peer of $VETH_PREFIX$i on the bridge), $BASE/hN/{upper,work,root} and $BASE/hN/ready.fifo.
create_host() {
    local i=$1 dir=$BASE/h$1 ns=$NS_PREFIX$1 addr fd line='' part n p
    addr_var addr "$i"
    cp -a "$BASE/.template/." "$dir/upper/"
    ssh-keygen -q -t ed25519 -N '' -C "root@h$i" -f "$dir/upper/etc/ssh/ssh_host_ed25519_key"
    echo "h$i" >"$dir/upper/etc/hostname"
    printf '127.0.0.1\tlocalhost\n%s\th%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$addr" "$i" \
        >"$dir/upper/etc/hosts"
    # The holder says "ready" or "failed" through the fifo (opened read-write here: never blocks).
    exec {fd}<>"$dir/ready.fifo"
    # The holder (pid 1 of the host) must not keep our stdout, stderr, fifo or lock open.
    setsid ip netns exec "$ns" unshare --mount --uts --pid --fork --mount-proc \
        /bin/bash "$LAB_SH" __holder "$i" </dev/null >"$dir/holder.log" 2>&1 9>&- {fd}>&- &
    for ((n = 0; n < 60; n++)); do
        if read -r -t 1 -u "$fd" part; then line+=$part; break; fi
        line+=$part                                # a timeout keeps the partial input
        [[ -n $(ip netns pids "$ns") ]] || break   # holder died without a word
    done
    exec {fd}>&-
    rm -f "$dir/ready.fifo"
    if [[ $line != ready ]]; then
        warn "h$i: setup failed${line:+ ($line)}:"; sed 's/^/    /' "$dir/holder.log" >&2
        return 1
    fi
    for p in $(ip netns pids "$ns"); do
        if is_ns_init "$p"; then echo "$p" >"$dir/holder.pid"; return 0; fi
    done
    warn "h$i: holder process not found"
    return 1
}

# pid 1 of host i, run by unshare inside the host's netns: network, mounts, sshd, then hold.
holder_main() {
    local i=$1 dir=$BASE/h$1 r=$BASE/h$1/root addr
    addr_var addr "$i"
    trap 'echo "h$i: holder setup failed at line $LINENO" >&2; echo failed >"$dir/ready.fifo"' ERR
    printf 'link set lo up\naddr add %s/16 dev eth0\nlink set eth0 up\n' "$addr" | ip -batch -
    mount -t overlay "$NS_PREFIX$i" -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$r"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
    mount --rbind /sys "$r/sys"
    mount -t proc proc "$r/proc"
    mount -t tmpfs -o mode=0755,nosuid,nodev run "$r/run"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$r/tmp"
    # Hide the other hosts' layers (their private host keys, of every lab instance) and the
    # project (the lab's client key).
    local other
    for other in "$BASE" /var/tmp/tendlab /var/tmp/tendlab[0-9]; do
        if [[ -d $other && -d $r$other ]] && ! mountpoint -q "$r$other"; then
            mount -t tmpfs -o ro,mode=0755,size=4k tendlab-hidden "$r$other"
        fi
    done
    if [[ $REPO_DIR != / && -d $r$REPO_DIR ]]; then
        mount -t tmpfs -o ro,mode=0755,size=4k tendlab-hidden "$r$REPO_DIR"
    fi
    echo "h$i" >/proc/sys/kernel/hostname
    mkdir -m 0755 "$r/run/sshd"
    mkdir -m 1777 "$r/run/lock"
    chroot "$r" /usr/sbin/sshd -p 22 -E /var/log/sshd.log   # daemonizes; pid 1 (us) reaps it
    : >"$dir/ready"
    trap - ERR
    echo ready >"$dir/ready.fifo"
    # Stay pid 1 of the host: bash reaps orphans (waitpid(-1)) while waiting for its sleep.
    exec -a "$NS_PREFIX$i" /bin/bash -c 'while :; do sleep 86400; done'
}

start_sshd() {  # i: start the sshd of a running host (no-op if the port is open)
    local i=$1 h addr
    addr_var addr "$i"
    h=$(holder_pid "$i")
    [[ -n $h ]] || die "h$i does not exist or is broken (see 'lab.sh status')"
    port_open "$addr" && return 0
    nsenter -t "$h" -m -u -n -p chroot "$BASE/h$i/root" /usr/sbin/sshd -p 22 -E /var/log/sshd.log \
        </dev/null >/dev/null 2>&1 9>&- || die "h$i: sshd did not start (see /var/log/sshd.log in the host)"
}

wait_host_port() {  # i: wait until host i's sshd accepts connections
    local addr
    addr_var addr "$1"
    wait_port "$addr" 30 || { warn "h$1 ($addr): port 22 not open after 30 s"; return 1; }
}

# Log in for real (strict host key check against known_hosts, lab key). Uses curve25519 key
# exchange: the default sntrup761 costs the client ~0.1 s of CPU per login.
login_host() {  # i
    local i=$1 tries
    for tries in 1 2 3 4 5 0; do
        ssh -F "$SSH_CONFIG" -o ConnectTimeout=5 -o KexAlgorithms=curve25519-sha256 "h$i" true </dev/null \
            && return 0
        ((tries)) || break
        sleep 0.3
    done
    warn "h$i: ssh login with the lab key fails"
    return 1
}

# Every given host accepts connections; then real logins: on each of them when there are at
# most 10, else on the first and the last (all hosts are set up by the same code; a login costs
# the machine ~40 ms of CPU, which is most of the time of 'up 50').
wait_hosts() {  # i...
    (($#)) || return 0
    run_parallel wait_host_port "$@"
    ((${#FAILED[@]} == 0)) || die "sshd does not accept connections on: ${FAILED[*]/#/h}"
    if (($# <= 10)); then
        run_parallel login_host "$@"
    else
        run_parallel login_host "$1" "${@: -1}"
    fi
    ((${#FAILED[@]} == 0)) || die "no ssh login on: ${FAILED[*]/#/h}"
}

# Run "$1 i" for every following i in the background, at most $PARALLEL at a time.
# Leaves the indexes whose run failed in FAILED (empty when all succeeded).
declare -A RUNNING=()
FAILED=()
run_parallel() {
    local fn=$1 i; shift
    FAILED=()
    for i in "$@"; do
        while ((${#RUNNING[@]} >= PARALLEL)); do reap_one; done
        "$fn" "$i" &
        RUNNING[$!]=$i
    done
    while ((${#RUNNING[@]})); do reap_one; done
}
reap_one() {
    local pid rc=0
    wait -n -p pid || rc=$?
    [[ -n ${pid:-} ]] || return 0
    ((rc == 0)) || FAILED+=("${RUNNING[$pid]}")
    unset "RUNNING[$pid]"
}

write_files() {  # n
    local n=$1 i addr tmp
    mkdir -p "$GEN_DIR"
    tmp=$(mktemp -d "$GEN_DIR/.gen.XXXXXX")
    {
        local type key _
        for ((i = 1; i <= n; i++)); do
            addr_var addr "$i"
            read -r type key _ <"$BASE/h$i/upper/etc/ssh/ssh_host_ed25519_key.pub"
            echo "$addr $type $key"
        done
    } >"$tmp/known_hosts"
    {
        echo "# Generated by tests/lab/lab.sh up; removed by lab.sh down. Usage: ssh -F $SSH_CONFIG h1"
        for ((i = 1; i <= n; i++)); do
            addr_var addr "$i"
            cat <<EOF

Host h$i
    HostName $addr
    Port 22
    User root
    IdentityFile $KEY
    IdentitiesOnly yes
    UserKnownHostsFile $KNOWN_HOSTS
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    BatchMode yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    GSSAPIAuthentication no
EOF
        done
    } >"$tmp/ssh_config"
    {
        echo "# Generated by tests/lab/lab.sh up; removed by lab.sh down."
        echo "all:"
        echo "  vars:"
        echo "    ansible_user: root"
        echo "    ansible_ssh_private_key_file: $KEY"
        echo "    ansible_ssh_common_args: \"-o UserKnownHostsFile=$KNOWN_HOSTS\""
        if ((n >= 5)); then
            # The shop's settings, as in inventory.example.yaml (lab passwords).
            cat <<'EOF'
    shop_db_name: shop
    shop_db_user: shop
    shop_db_password: lab-app-pw
    shop_repl_password: lab-repl-pw
    shop_db_proxy_port: 3307
    shop_http_port: 80
    shop_app_port: 8080
EOF
            # Backups of the lab's shop go with the lab (a store on the control node).
            echo "    backup_store_dir: $BASE/backups"
        fi
        echo "  children:"
        echo "    lab:"
        echo "      hosts:"
        for ((i = 1; i <= n; i++)); do
            addr_var addr "$i"
            echo "        h$i:"
            echo "          ansible_host: $addr"
        done
        if ((n >= 5)); then
            # The shop runs on the last five hosts (h1..h5 with `up 5`), so a larger lab keeps
            # its first hosts for other tests.
            local s=$((n - 4))
            cat <<EOF
    lb:
      hosts:
        h$s: {}
    app:
      hosts:
        h$((s + 1)): {}
        h$((s + 2)): {}
    db:
      children:
        db_primary:
          hosts:
            h$((s + 3)): {}
        db_replica:
          hosts:
            h$((s + 4)): {}
EOF
        fi
    } >"$tmp/inventory.yaml"
    chmod 644 "$tmp"/*
    give_to_sudo_user "$tmp"/*
    mv -f "$tmp/known_hosts" "$KNOWN_HOSTS"
    mv -f "$tmp/ssh_config" "$SSH_CONFIG"
    mv -f "$tmp/inventory.yaml" "$INVENTORY"
    rmdir "$tmp"
}

cmd_up() {
    require_root
    [[ $# -eq 1 ]] || die "usage: lab.sh up N"
    check_index "$1"
    local n=$1 i st addr keep=() create=() problems=() restart=() dirs=() fifos=()
    ensure_tools
    lock
    for i in $(existing_indexes); do
        ((i <= n)) || problems+=("h$i exists but 'up $n' wants h1..h$n only")
    done
    for ((i = 1; i <= n; i++)); do
        st=$(host_state "$i")
        case $st in
            absent) create+=("$i") ;;
            ok) keep+=("$i"); addr_var addr "$i"; port_open "$addr" || restart+=("$i") ;;
            *) problems+=("h$i: ${st#broken: }") ;;
        esac
    done
    if ((${#problems[@]})); then
        printf 'lab.sh:   %s\n' "${problems[@]}" >&2
        die "the lab is half-existing; run 'lab.sh down' first"
    fi
    ensure_packages
    ensure_keypair
    ensure_bridge
    if ((${#create[@]})); then
        phase "preparing ${#create[@]} hosts"
        for i in "${create[@]}"; do
            dirs+=("$BASE/h$i/upper" "$BASE/h$i/work" "$BASE/h$i/root")
            fifos+=("$BASE/h$i/ready.fifo")
        done
        mkdir -p "${dirs[@]}"
        mkfifo "${fifos[@]}"
        make_template
        for i in "${create[@]}"; do
            echo "netns add $NS_PREFIX$i"
            echo "link add $VETH_PREFIX$i type veth peer name eth0 netns $NS_PREFIX$i"
            echo "link set $VETH_PREFIX$i master $BRIDGE up"
        done | ip -batch - || die "could not create network namespaces and veths (run 'lab.sh down')"
        phase "starting ${#create[@]} hosts"
        run_parallel create_host "${create[@]}"
        ((${#FAILED[@]} == 0)) || die "could not create hosts: ${FAILED[*]/#/h} (run 'lab.sh down')"
        rm -rf "$BASE/.template"
    fi
    for i in "${restart[@]}"; do start_sshd "$i"; done
    write_files "$n"
    phase "waiting for sshd on $((${#create[@]} + ${#restart[@]})) hosts"
    wait_hosts "${create[@]}" "${restart[@]}"
    phase "done"
    info "$n hosts up (${#create[@]} created, ${#keep[@]} kept) in $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b - a}')s"
    info "try: ssh -F $SSH_CONFIG h1 hostname; inventory: $INVENTORY"
}

cmd_down() {
    require_root
    lock
    local i pids=() p h idx deadline
    idx=$(existing_indexes)
    for i in $idx; do
        h=$(holder_pid "$i")
        [[ -n $h ]] && pids+=("$h")
        if [[ -e /run/netns/$NS_PREFIX$i ]]; then
            for p in $(ip netns pids "$NS_PREFIX$i" 2>/dev/null); do pids+=("$p"); done
        fi
    done
    if ((${#pids[@]})); then
        kill -KILL "${pids[@]}" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        for p in "${pids[@]}"; do
            while [[ -e /proc/$p && $(awk '/^State:/{print $2}' "/proc/$p/status" 2>/dev/null) != Z ]]; do
                ((SECONDS < deadline)) || { warn "pid $p does not die"; break; }
                sleep 0.05
            done
        done
    fi
    # The hosts' mounts live in their own mount namespaces and went away with them; anything
    # mounted under $BASE in the machine's namespace is unmounted here (deepest first).
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null || warn "could not unmount $m"
    done < <(awk -v b="$BASE/" 'index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    for i in $idx; do
        ip link del "$VETH_PREFIX$i" 2>/dev/null || true
        ip netns del "$NS_PREFIX$i" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    if [[ -d $BASE ]]; then
        # --one-file-system: never descend into anything still mounted.
        rm -rf --one-file-system "$BASE" || warn "could not remove all of $BASE"
    fi
    rm -f "$KNOWN_HOSTS" "$SSH_CONFIG" "$INVENTORY"
    rm -rf "$GEN_DIR"/.gen.*
    ((INSTANCE == 0)) || rmdir "$GEN_DIR" 2>/dev/null || true
    local left
    left=$(existing_indexes)
    if [[ -n $left || -e /sys/class/net/$BRIDGE ]]; then
        die "down left things behind (hosts: ${left:-none}; bridge: $([[ -e /sys/class/net/$BRIDGE ]] && echo yes || echo no))"
    fi
    info "lab is down"
}

cmd_status() {
    require_root
    local i st any=0
    for i in $(existing_indexes); do
        any=1
        st=$(host_state "$i")
        if [[ $st == ok ]]; then
            if port_open "$(addr_of "$i")"; then st="sshd up"; else st="sshd down"; fi
        fi
        printf 'h%-5s %-12s %s\n' "$i" "$(addr_of "$i")" "$st"
    done
    ((any)) || echo "lab is down (no hosts)" >&2
    return 0
}

cmd_inventory() {
    [[ -f $INVENTORY ]] || die "no inventory: the lab is down (run 'lab.sh up N')"
    echo "$INVENTORY"
}

cmd_sshd_stop() {
    require_root
    [[ $# -eq 1 ]] || die "usage: lab.sh sshd-stop I"
    check_index "$1"
    lock
    local i=$1 p comm pids=() deadline
    [[ $(host_state "$i") == ok ]] || die "h$i does not exist or is broken (see 'lab.sh status')"
    for p in $(ip netns pids "$NS_PREFIX$i"); do
        comm=''
        read -r comm 2>/dev/null <"/proc/$p/comm" || true
        if [[ $comm == sshd ]]; then pids+=("$p"); fi
    done
    ((${#pids[@]})) || { info "h$i: sshd is not running"; return 0; }
    kill -TERM "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    for p in "${pids[@]}"; do
        while [[ -e /proc/$p && $(awk '/^State:/{print $2}' "/proc/$p/status" 2>/dev/null) != Z ]]; do
            if ((SECONDS >= deadline)); then kill -KILL "$p" 2>/dev/null || true; fi
            sleep 0.02
        done
    done
    ! port_open "$(addr_of "$i")" || die "h$i: port 22 still open after stopping sshd"
    info "h$i: sshd stopped"
}

cmd_sshd_start() {
    require_root
    [[ $# -eq 1 ]] || die "usage: lab.sh sshd-start I"
    check_index "$1"
    lock
    local i=$1
    [[ $(host_state "$i") == ok ]] || die "h$i does not exist or is broken (see 'lab.sh status')"
    if port_open "$(addr_of "$i")"; then info "h$i: sshd is already running"; return 0; fi
    start_sshd "$i"
    wait_port "$(addr_of "$i")" 30 || die "h$i: sshd does not accept connections"
    info "h$i: sshd started"
}

cmd_exec() {
    require_root
    [[ $# -ge 2 ]] || die "usage: lab.sh exec I CMD..."
    check_index "$1"
    local i=$1 h; shift
    h=$(holder_pid "$i")
    [[ -n $h ]] || die "h$i does not exist or is broken (see 'lab.sh status')"
    exec nsenter -t "$h" -m -u -n -p chroot "$BASE/h$i/root" /usr/bin/env -i \
        HOME=/root USER=root LOGNAME=root SHELL=/bin/bash PATH="$HOST_PATH" LANG=C.UTF-8 \
        TERM="${TERM:-dumb}" "$@"
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down ;;
        status) cmd_status ;;
        inventory) cmd_inventory ;;
        address) check_index "${1:-}"; addr_of "$1" ;;
        sshd-stop) cmd_sshd_stop "$@" ;;
        sshd-start) cmd_sshd_start "$@" ;;
        exec) cmd_exec "$@" ;;
        __holder) holder_main "$@" ;;
        -h | --help | help) usage ;;
        '') usage >&2; exit 2 ;;
        *) warn "unknown command '$cmd'"; usage >&2; exit 2 ;;
    esac
}

main "$@"
