#!/bin/bash
# Boot the testvm image built by build.sh directly with QEMU (TCG, no cloud)
# and check it: the `testvm ready` console line, ssh as testvm with the key
# from the config drive, the HTTP answer on port 80, the user data script and
# a clean ACPI poweroff.
#
#   images/testvm/boot-test.sh OUTDIR
#
# Environment:
#   TESTVM_CONFIG_DRIVE  virtio (default: config drive as a 2nd virtio disk),
#                        cdrom (IDE cd-rom, as libvirt attaches it),
#                        metadata (no config drive: the same files served at
#                        http://169.254.169.254/ by QEMU's slirp guestfwd and
#                        the host's busybox httpd -i), or
#                        none (no metadata at all: instance_id=none and
#                        hostname=testvm are expected, ssh is not checked)
#   TESTVM_NIC           virtio-net-pci (default) or e1000
#   TESTVM_TIMEOUT       seconds to wait for `testvm ready` (default 120)
#   TESTVM_KEEP          keep the work directory (console log, keys) if set
set -euo pipefail
export LC_ALL=C

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUTDIR=$(cd "$1" && pwd)
CD_MODE=${TESTVM_CONFIG_DRIVE:-virtio}
NIC=${TESTVM_NIC:-virtio-net-pci}
TIMEOUT=${TESTVM_TIMEOUT:-120}
for f in testvm-kernel testvm-ramdisk testvm.qcow2; do
	[ -f "$OUTDIR/$f" ] || { echo "boot-test: $OUTDIR/$f missing (run build.sh first)" >&2; exit 2; }
done

say() { echo "boot-test: $*" >&2; }

# --- host tools (Debian packages) ------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v genisoimage >/dev/null || need+=(genisoimage)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
if [ "$CD_MODE" = metadata ] && ! command -v busybox >/dev/null; then need+=(busybox-static); fi
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "boot-test: missing ${need[*]} (run as root to install)" >&2; exit 2; }
	say "installing ${need[*]}"
	inst() {
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			$(printf '%s\n' "${need[@]}" | sort -u) >&2
	}
	inst || { apt-get update -q >&2 && inst; }
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/testvm-boot.XXXXXX")
QPID=
cleanup() {
	local rc=$?
	if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
		kill "$QPID" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$QPID" 2>/dev/null || true
	fi
	[ -z "$QPID" ] || wait "$QPID" 2>/dev/null || true
	if [ -n "${TESTVM_KEEP:-}" ]; then say "work directory kept: $T"; else rm -rf "$T"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CONSOLE=$T/console.log
fail() {
	echo "boot-test: FAIL: $*" >&2
	echo "----- console log ($CONSOLE) -----" >&2
	tr -d '\r' < "$CONSOLE" >&2 2>/dev/null || true
	echo "----- end of console log -----" >&2
	exit 1
}

free_port() { # a TCP port nothing listens on, below the ephemeral range (32768-60999): a
	# port some client connection uses as its local port refuses connects but cannot be bound
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 12000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}

# --- config drive -------------------------------------------------------------------
UUID=$(cat /proc/sys/kernel/random/uuid)
NAME=boot-test
ssh-keygen -q -t ed25519 -N '' -C "$NAME-key" -f "$T/id_ed25519"
PUBKEY=$(cat "$T/id_ed25519.pub")
mkdir -p "$T/cd/openstack/latest"
cat > "$T/cd/openstack/latest/meta_data.json" <<EOF
{"uuid": "$UUID", "meta": {"name": "not-this"},
 "public_keys": {"$NAME-key": "$PUBKEY\n"},
 "keys": [{"name": "$NAME-key", "type": "ssh", "data": "$PUBKEY\n"}],
 "hostname": "$NAME", "name": "$NAME", "launch_index": 0,
 "availability_zone": "nova", "project_id": "0123456789abcdef0123456789abcdef",
 "devices": [], "random_seed": "dGVzdA=="}
EOF
cat > "$T/cd/openstack/latest/user_data" <<'EOF'
#!/bin/sh
echo "user-data: hello from $(hostname)"
echo ran > /run/user-data-ran
EOF
genisoimage -quiet -o "$T/config.iso" -V config-2 -J -r -l -ldots -allow-lowercase \
	-allow-multidot "$T/cd" 2>"$T/genisoimage.log" ||
	{ cat "$T/genisoimage.log" >&2; exit 1; }

# --- boot -----------------------------------------------------------------------------
qemu-img create -q -f qcow2 -b "$OUTDIR/testvm.qcow2" -F qcow2 "$T/overlay.qcow2"
SSH_PORT=$(free_port)
HTTP_PORT=$(free_port)
[ "$HTTP_PORT" != "$SSH_PORT" ] || HTTP_PORT=$((SSH_PORT + 1))
mkfifo "$T/mon.in" "$T/mon.out"
QEMU=(qemu-system-x86_64 -machine pc,accel=tcg -m 256 -smp 1 -nodefaults -no-user-config
	-display none -serial "file:$CONSOLE" -monitor "pipe:$T/mon"
	-kernel "$OUTDIR/testvm-kernel" -initrd "$OUTDIR/testvm-ramdisk"
	-append "console=ttyS0 panic=-1"
	-no-reboot
	-drive "file=$T/overlay.qcow2,format=qcow2,if=virtio"
	-device "$NIC,netdev=n0"
	-device virtio-rng-pci)
# restrict=on: the guest cannot reach anything outside QEMU (slirp then also
# leaves the router and DNS out of its DHCP answers); hostfwd still works.
NETDEV="user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:80"
case $CD_MODE in
virtio) QEMU+=(-drive "file=$T/config.iso,format=raw,if=virtio,readonly=on") ;;
cdrom) QEMU+=(-drive "file=$T/config.iso,format=raw,if=ide,media=cdrom") ;;
metadata)
	# the guest network is 169.254.169.0/24, so 169.254.169.254 is on-link;
	# every connection to it runs `busybox httpd -i` on the host
	NETDEV+=",net=169.254.169.0/24,host=169.254.169.2,dhcpstart=169.254.169.15"
	NETDEV+=",guestfwd=tcp:169.254.169.254:80-cmd:$(command -v busybox) httpd -i -h $T/cd"
	;;
none) ;;
*) echo "boot-test: TESTVM_CONFIG_DRIVE must be virtio, cdrom, metadata or none" >&2; exit 2 ;;
esac
QEMU+=(-netdev "$NETDEV")
: > "$CONSOLE"
START=$(date +%s.%N)
"${QEMU[@]}" &
QPID=$!
say "qemu pid $QPID (TCG, metadata: $CD_MODE, nic: $NIC), ssh port $SSH_PORT, http port $HTTP_PORT"

READY=
while :; do
	READY=$(tr -d '\r' < "$CONSOLE" | grep -a '^testvm ready' | head -1 || true)
	[ -z "$READY" ] || break
	kill -0 "$QPID" 2>/dev/null || fail "qemu exited before 'testvm ready'"
	elapsed=$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%d", n - s }')
	[ "$elapsed" -lt "$TIMEOUT" ] || fail "no 'testvm ready' line within ${TIMEOUT}s"
	sleep 0.2
done
BOOT_TIME=$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }')
say "ready after ${BOOT_TIME}s: $READY"

# --- checks -----------------------------------------------------------------------------
n=$(tr -d '\r' < "$CONSOLE" | grep -ac '^testvm ready' || true)
[ "$n" -eq 1 ] || fail "expected exactly one 'testvm ready' line, got $n"
ADDRS=$(sed -n 's/.* addresses=\([^ ]*\).*/\1/p' <<< "$READY")
[ -n "$ADDRS" ] && [ "$ADDRS" != none ] || fail "no address in: $READY"
if [ "$CD_MODE" = none ]; then
	EXP_HOST=testvm
	[[ "$READY" == "testvm ready hostname=testvm instance_id=none addresses="* ]] ||
		fail "unexpected ready line: $READY"
else
	EXP_HOST=$NAME
	[[ "$READY" == "testvm ready hostname=$NAME instance_id=$UUID addresses="* ]] ||
		fail "unexpected ready line: $READY"
fi

body=$(curl -s --max-time 20 "http://127.0.0.1:$HTTP_PORT/" || true)
[ "$body" = "$EXP_HOST" ] || fail "HTTP on port 80 answered '$body', expected '$EXP_HOST'"
say "http ok: $body"

if [ "$CD_MODE" != none ]; then
	SSH=(ssh -i "$T/id_ed25519" -p "$SSH_PORT" -o BatchMode=yes -o StrictHostKeyChecking=no
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=30 testvm@127.0.0.1)
	out=
	for _ in 1 2 3; do
		out=$("${SSH[@]}" 'echo "$(id -un) $(hostname) $(cat /run/testvm/instance_id)"; cat /run/user-data-ran 2>/dev/null' 2>"$T/ssh.err" || true)
		[ -z "$out" ] || break
		sleep 2
	done
	first=$(head -1 <<< "$out")
	[ "$first" = "testvm $NAME $UUID" ] ||
		fail "ssh as testvm gave '$out' ($(cat "$T/ssh.err"))"
	say "ssh ok: $first"
	# user data runs in the background; give it a moment
	for _ in $(seq 50); do
		tr -d '\r' < "$CONSOLE" | grep -aq "^user-data: hello from $NAME" && break
		sleep 0.2
	done
	tr -d '\r' < "$CONSOLE" | grep -aq "^user-data: hello from $NAME" ||
		fail "user data script did not run"
	say "user data ok"
fi

# --- ACPI power button -> clean poweroff ------------------------------------------------
timeout 5 sh -c 'echo system_powerdown > "$1"' sh "$T/mon.in" || fail "cannot talk to the QEMU monitor"
for _ in $(seq 150); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$QPID" 2>/dev/null; then fail "guest did not power off within 30s of system_powerdown"; fi
wait "$QPID" || true
QPID=
tr -d '\r' < "$CONSOLE" | grep -aq 'power button pressed' || fail "no power button message on the console"
say "poweroff ok"

echo "boot-test: PASS (metadata: $CD_MODE, nic: $NIC): testvm ready after ${BOOT_TIME}s"
