# Shared helpers of the set-up and test scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${FERROSTACK_VENV:-$HOME/.cache/ferrostack-venv}
# Versions of the real OpenStack clients the tests drive.
CLIENT_PACKAGES="python-openstackclient==10.5.0 openstacksdk==4.22.0 keystoneauth1==5.18.1 pytest==9.2.0 websocket-client==1.8.0"

log() { printf '\n==> %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "run this as root (it installs Debian packages and, later, manages network namespaces)" >&2
    exit 1
  fi
}

# Installs the Debian packages the cloud and its tests need, when missing, then checks that
# every tool the stages call is there (failing with its name when one is not).
install_packages() {
  local want=(postgresql python3-venv python3-pip ca-certificates iproute2 curl
              genisoimage openssh-client cpio xz-utils e2fsprogs kmod binutils busybox-static novnc
              chromium nftables conntrack dnsmasq-base radvd iputils-ping iputils-arping)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  install_qemu
  if ! command -v cargo >/dev/null; then
    echo "cargo (Rust 1.85 or newer) is required: install the Rust toolchain first" >&2
    exit 1
  fi
  check_tools
}

# QEMU's packages are installed together, at one version: the system emulator, qemu-img and
# the block drivers (RBD, iSCSI) the QEMU driver uses. A machine may carry a newer qemu-utils
# (e.g. from backports) than the qemu-system-x86 its sources offer; installing the emulator
# alone then removes that qemu-utils, so all three are put at the emulator's version.
QEMU_PACKAGES=(qemu-system-x86 qemu-utils qemu-block-extra)
install_qemu() {
  local version p have ok=1
  for p in "${QEMU_PACKAGES[@]}"; do
    have=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)
    case "$have" in
      "install ok installed "*) [ -z "${version:-}" ] && version=${have##* }
                                [ "${have##* }" = "$version" ] || ok=0 ;;
      *) ok=0 ;;
    esac
  done
  [ "$ok" = 1 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    apt-get update -qq
    version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  fi
  log "installing QEMU $version: ${QEMU_PACKAGES[*]}"
  apt-get install -y -qq --no-install-recommends --allow-downgrades \
    $(for p in "${QEMU_PACKAGES[@]}"; do printf '%s=%s ' "$p" "$version"; done) >/dev/null
}

# Every tool a stage of the test command or the all-in-one cloud runs.
check_tools() {
  local t absent=()
  for t in qemu-system-x86_64 qemu-img genisoimage ssh ssh-keygen curl cpio xz mkfs.ext4 \
           debugfs modinfo objdump busybox python3 cargo runuser chromium nft conntrack \
           dnsmasq radvd ping arping ip; do
    command -v "$t" >/dev/null 2>&1 || absent+=("$t")
  done
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || absent+=(pg_ctl)
  [ -f /usr/share/novnc/vnc_lite.html ] || absent+=(novnc)
  if [ ${#absent[@]} -gt 0 ]; then
    echo "missing after installing packages: ${absent[*]}" >&2
    exit 1
  fi
}

# A Python venv with the real OpenStack client, reused between runs.
install_clients() {
  local frozen p missing=0
  frozen=$("$VENV/bin/pip" freeze 2>/dev/null || true)
  for p in $CLIENT_PACKAGES; do
    grep -qix "$p" <<<"$frozen" || missing=1
  done
  if [ ! -x "$VENV/bin/openstack" ] || [ "$missing" = 1 ]; then
    log "installing the OpenStack client into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q $CLIENT_PACKAGES
  fi
}

build_release() {
  log "building ferrostack (release)"
  (cd "$ROOT" && cargo build --release --locked -p ferrostack)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_cloud DIR PORT [args...]: runs an all-in-one cloud in the background, waits until its
# identity API answers, and records its pid in DIR/pid. Its hosts are simulated (fake driver)
# unless the args or FERROSTACK_COMPUTE_DRIVER say otherwise.
start_cloud() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  FERROSTACK_COMPUTE_DRIVER=${FERROSTACK_COMPUTE_DRIVER:-fake} \
  "$ROOT/target/release/ferrostack" all-in-one --data-dir "$dir" --listen "127.0.0.1:$port" "$@" \
    >"$dir/ferrostack.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$port/identity/v3" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "the cloud in $dir did not start:" >&2
  tail -n 30 "$dir/ferrostack.log" >&2
  return 1
}

stop_cloud() {
  local dir=$1
  [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null && wait "$(cat "$dir/pid")" 2>/dev/null
  rm -f "$dir/pid"
  remove_cloud_namespaces "$dir"
  return 0
}

# The network namespaces a stopped cloud's hosts left (its outside world, data planes, DHCP
# servers and routers, all named after the prefix in <dir>/external-netns), their daemons
# first; a cloud's namespaces outlive its process on purpose (guests' traffic goes on).
remove_cloud_namespaces() {
  local dir=$1 outside prefix ns pid
  [ -f "$dir/external-netns" ] || return 0
  outside=$(tr -d '[:space:]' <"$dir/external-netns")
  prefix=${outside%-ext}
  [ -n "$prefix" ] || return 0
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in
      "$outside"|"$prefix"-dp-*|"$prefix"-dhcp-*|"$prefix"-router-*)
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
        ip netns delete "$ns" 2>/dev/null ;;
    esac
  done
  rm -rf "/run/ferrostack/net/$prefix"
  return 0
}

# start_postgres DIR PORT: a private PostgreSQL server (Debian's binaries) on 127.0.0.1:PORT,
# run as the postgres user with its data in DIR. Prints the URL of a fresh database.
start_postgres() {
  local dir=$1 port=$2
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  mkdir -p "$dir"
  chown postgres: "$dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" --auth=trust -U postgres >"$dir/initdb.log" 2>&1
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null
  runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres ferrostack_test
  echo "postgres://postgres@127.0.0.1:$port/ferrostack_test"
}

stop_postgres() {
  local dir=$1
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [ -d "$dir/data" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true  # not running: nothing to stop
  rm -rf "$dir"
  return 0
}

# The testvm guest image (images/testvm), built reproducibly from Debian packages and cached.
TESTVM_DIR=${FERROSTACK_TESTVM_DIR:-$HOME/.cache/ferrostack-testvm/out}
build_testvm() {
  log "building the testvm guest image into $TESTVM_DIR (cached)"
  "$ROOT/images/testvm/build.sh" "$TESTVM_DIR" >&2
}
