#!/bin/bash
# Build the ferrostack test guest image "testvm" from Debian 12 packages.
#
#   sudo images/testvm/build.sh [--force] OUTDIR
#
# Produces in OUTDIR: testvm-kernel, testvm-ramdisk, testvm.qcow2, SHA256SUMS.
# See images/testvm/README.md. Environment:
#   TESTVM_CACHE        download cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/ferrostack-testvm)
#   TESTVM_KERNEL_PKG   kernel package (default: what linux-image-amd64 depends on)
#   SOURCE_DATE_EPOCH   timestamp for every file (default: the kernel image's mtime)
set -euo pipefail
umask 022
export LC_ALL=C

usage() { echo "usage: $0 [--force] OUTDIR" >&2; exit 2; }
die() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "testvm-build: $*" >&2; }

FORCE=0
ARGS=()
for a in "$@"; do
	case $a in
	--force) FORCE=1 ;;
	-h|--help) usage ;;
	-*) usage ;;
	*) ARGS+=("$a") ;;
	esac
done
[ ${#ARGS[@]} -eq 1 ] || usage
OUTDIR=${ARGS[0]}

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get, mknod)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 hosts are supported"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${TESTVM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ferrostack-testvm}
DEBS=$CACHE/debs
STAMP_NAME=.testvm-build-stamp

# Modules wanted in the image, in load order; build-time dependency resolution
# (modinfo depends=) inserts whatever each one needs in front of it.
WANT_MODULES=(
	virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
	failover net_failover virtio_net virtio_blk virtio_scsi virtio_rng
	e1000 e1000e
	scsi_mod scsi_common sd_mod cdrom sr_mod libata ata_piix libahci ahci
	isofs fat vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859_1
	crc16 mbcache crc32c_generic jbd2 ext4
	button evdev
)

# --- host tools --------------------------------------------------------------
ensure_tools() {
	local pkgs=() pair cmd pkg
	for pair in qemu-img:qemu-utils cpio:cpio gzip:gzip xz:xz-utils \
		mkfs.ext4:e2fsprogs debugfs:e2fsprogs modinfo:kmod objdump:binutils readelf:binutils \
		sha256sum:coreutils; do
		cmd=${pair%%:*} pkg=${pair#*:}
		command -v "$cmd" >/dev/null 2>&1 || pkgs+=("$pkg")
	done
	if [ ${#pkgs[@]} -gt 0 ]; then
		say "installing ${pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			$(printf '%s\n' "${pkgs[@]}" | sort -u) >&2
	fi
}

# One apt-cache query (apt-cache is slow when its binary cache is disabled, as
# in containers): the kernel package linux-image-amd64 points to, and
# dropbear-bin's recursive dependencies, which carry the shared libraries it
# links to (libtomcrypt1 pulls libgmp10, ...; only the needed ones are copied).
resolve_packages() {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances linux-image-amd64 dropbear-bin |
	awk '
	/^[^ ]/ { cur = $1; next }
	$1 ~ /^[|]?(Pre)?Depends:$/ && $2 !~ /^</ { dep[cur] = dep[cur] " " $2 }
	END {
		n = 1; q[1] = "dropbear-bin"; seen["dropbear-bin"] = 1
		for (i = 1; i <= n; i++) {
			m = split(dep[q[i]], d, " ")
			for (j = 1; j <= m; j++) if (!seen[d[j]]++) q[++n] = d[j]
		}
		for (i = 2; i <= n; i++) print "lib", q[i]
		m = split(dep["linux-image-amd64"], d, " ")
		for (j = 1; j <= m; j++) if (d[j] ~ /^linux-image-[0-9]/) { print "kernel", d[j]; break }
	}'
}

# --- inputs ------------------------------------------------------------------
# one build at a time per cache directory
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

RESOLVED=$(resolve_packages 2>/dev/null || true)
if ! grep -q '^kernel ' <<< "$RESOLVED"; then # no package lists yet
	say "apt-get update"
	apt-get update -q >&2
	RESOLVED=$(resolve_packages)
fi
ensure_tools
KPKG=${TESTVM_KERNEL_PKG:-$(awk '$1 == "kernel" { print $2 }' <<< "$RESOLVED")}
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 to a versioned kernel package"
KVER=${KPKG#linux-image-}
DROPBEAR_DEPS=$(awk '$1 == "lib" { print $2 }' <<< "$RESOLVED" | sort -u)
[ -n "$DROPBEAR_DEPS" ] || die "cannot resolve the dependencies of dropbear-bin"
PKGS=("$KPKG" busybox-static dropbear-bin $DROPBEAR_DEPS)
declare -A VER
while read -r p v; do VER[$p]=$v; done < <(apt-cache policy "${PKGS[@]}" |
	awk '/^[^ ]/ { sub(/:$/, "", $1); p = $1 } $1 == "Candidate:" { print p, $2 }')
for p in "${PKGS[@]}"; do
	case ${VER[$p]:-} in ""|"(none)") die "no installable version of $p" ;; esac
done

# Everything that determines the output goes into the stamp.
inputs() {
	echo "format 1"
	echo "build.sh $(sha256sum < "$HERE/build.sh" | cut -d' ' -f1)"
	(cd "$HERE/rootfs" && find . -type f -printf '%P\n' | sort | while read -r f; do
		m=644; [ -x "$f" ] && m=755
		echo "rootfs/$f $m $(sha256sum < "$f" | cut -d' ' -f1)"
	done)
	for p in "${PKGS[@]}"; do echo "package $p ${VER[$p]}"; done
	echo "tool $(qemu-img --version | head -1)"
	echo "tool $(mke2fs -V 2>&1 | head -1)"
	echo "tool $(cpio --version | head -1)"
	echo "tool $(gzip --version | head -1)"
	echo "SOURCE_DATE_EPOCH ${SOURCE_DATE_EPOCH:-kernel}"
}
INPUTS=$(inputs)

OUTPUTS=(testvm-kernel testvm-ramdisk testvm.qcow2)
if [ $FORCE -eq 0 ] && [ -f "$OUTDIR/$STAMP_NAME" ] && [ -f "$OUTDIR/SHA256SUMS" ] &&
	[ "$(cat "$OUTDIR/$STAMP_NAME")" = "$INPUTS" ] &&
	(cd "$OUTDIR" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
	say "up to date: $OUTDIR ($KPKG ${VER[$KPKG]})"
	exit 0
fi

# --- downloads ---------------------------------------------------------------
mkdir -p "$DEBS"
deb_path() { # pkg version -> path of the cached .deb (downloading it if needed)
	local pkg=$1 ver=$2 f
	f=$(find "$DEBS" -maxdepth 1 -name "${pkg}_${ver//:/%3a}_*.deb" | sort | head -1)
	if [ -z "$f" ]; then
		say "downloading $pkg=$ver"
		(cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2)
		f=$(find "$DEBS" -maxdepth 1 -name "${pkg}_${ver//:/%3a}_*.deb" | sort | head -1)
	fi
	[ -n "$f" ] || die "download of $pkg=$ver failed"
	[ "$(dpkg-deb -f "$f" Package) $(dpkg-deb -f "$f" Version)" = "$pkg $ver" ] ||
		die "$f is not $pkg $ver"
	echo "$f"
}
declare -A DEB
for p in "${PKGS[@]}"; do DEB[$p]=$(deb_path "$p" "${VER[$p]}"); done

# --- work tree ---------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/testvm-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/kernel" "$WORK/bb" "$WORK/db" "$WORK/libs" "$WORK/out"

say "unpacking $KPKG ${VER[$KPKG]}"
dpkg-deb -x "${DEB[$KPKG]}" "$WORK/kernel"
dpkg-deb -x "${DEB[busybox-static]}" "$WORK/bb"
dpkg-deb -x "${DEB[dropbear-bin]}" "$WORK/db"
for p in $DROPBEAR_DEPS; do dpkg-deb -x "${DEB[$p]}" "$WORK/libs"; done

VMLINUZ=$WORK/kernel/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no /boot/vmlinuz-$KVER in $KPKG"
KMOD=$WORK/kernel/lib/modules/$KVER
[ -d "$KMOD" ] || KMOD=$WORK/kernel/usr/lib/modules/$KVER
[ -d "$KMOD" ] || die "no modules directory for $KVER in $KPKG"

SDE=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$VMLINUZ")}

R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,proc,sys,dev,run,tmp,root,home,mnt,var/log,var/www,etc/dropbear}
ln -s /run "$R/var/run"
chmod 1777 "$R/tmp"
chmod 700 "$R/root"

# --- busybox -----------------------------------------------------------------
BB=$WORK/bb/bin/busybox
[ -x "$BB" ] || die "no /bin/busybox in busybox-static"
install -m 755 "$BB" "$R/bin/busybox"
for a in $("$BB" --list-full | sort); do
	case $a in bin/busybox|linuxrc) continue ;; esac
	[ -e "$R/$a" ] || [ -L "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
for a in sh awk findfs udhcpc httpd insmod getty init mkpasswd acpid syslogd wget setsid timeout ip; do
	[ -L "$R/bin/$a" ] || [ -L "$R/sbin/$a" ] || [ -L "$R/usr/bin/$a" ] || [ -L "$R/usr/sbin/$a" ] ||
		die "busybox-static lacks the $a applet"
done

# --- dropbear and the libraries it needs ---------------------------------------
install -m 755 "$WORK/db/usr/sbin/dropbear" "$R/usr/sbin/dropbear"
install -m 755 "$WORK/db/usr/bin/dropbearkey" "$R/usr/bin/dropbearkey"
LIBDIR=lib/x86_64-linux-gnu
find_lib() {
	local d
	for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib usr/lib lib64; do
		if [ -e "$WORK/libs/$d/$1" ]; then readlink -f "$WORK/libs/$d/$1"; return; fi
	done
	die "shared library $1 not found in:" $DROPBEAR_DEPS
}
copy_libs() { # ELF file: copy its NEEDED closure into $R/$LIBDIR
	local so src
	for so in $(objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'); do
		[ -e "$R/$LIBDIR/$so" ] && continue
		src=$(find_lib "$so")
		install -m 755 "$src" "$R/$LIBDIR/$so"
		copy_libs "$R/$LIBDIR/$so"
	done
}
copy_libs "$R/usr/sbin/dropbear"
copy_libs "$R/usr/bin/dropbearkey"
INTERP=$(readelf -l "$R/usr/sbin/dropbear" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ "$INTERP" = /lib64/ld-linux-x86-64.so.2 ] || die "unexpected ELF interpreter $INTERP"
if [ ! -e "$R/$LIBDIR/ld-linux-x86-64.so.2" ]; then
	src=$(find_lib ld-linux-x86-64.so.2)
	install -m 755 "$src" "$R/$LIBDIR/ld-linux-x86-64.so.2"
fi
ln -s "/$LIBDIR/ld-linux-x86-64.so.2" "$R/lib64/ld-linux-x86-64.so.2"
chroot "$R" /usr/sbin/dropbear -V >/dev/null 2>&1 ||
	die "dropbear does not run with the copied libraries: $(chroot "$R" /usr/sbin/dropbear -V 2>&1 | head -3)"

# --- kernel modules ------------------------------------------------------------
declare -A MODFILE BUILTIN SEEN
while read -r f; do
	n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
	MODFILE[$n]=$f
done < <(find "$KMOD/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
if [ -f "$KMOD/modules.builtin" ]; then
	while read -r f; do
		n=${f##*/}; n=${n%.ko}; BUILTIN[${n//-/_}]=1
	done < "$KMOD/modules.builtin"
fi
ORDER=()
resolve() {
	local m=${1//-/_} d
	[ -z "${SEEN[$m]:-}" ] || return 0
	SEEN[$m]=1
	if [ -z "${MODFILE[$m]:-}" ]; then
		[ -n "${BUILTIN[$m]:-}" ] && return 0
		die "kernel module $m not found in $KPKG"
	fi
	for d in $(modinfo -F depends "${MODFILE[$m]}" | tr ',' ' '); do resolve "$d"; done
	ORDER+=("$m")
}
for m in "${WANT_MODULES[@]}"; do resolve "$m"; done
MD=$R/lib/modules/$KVER
mkdir -p "$MD"
for m in "${ORDER[@]}"; do
	f=${MODFILE[$m]}
	case $f in
	*.ko.xz) xz -dc "$f" > "$MD/$m.ko" ;;
	*.ko.zst) zstd -q -dc "$f" > "$MD/$m.ko" ;;
	*.ko.gz) gzip -dc "$f" > "$MD/$m.ko" ;;
	*) cp "$f" "$MD/$m.ko" ;;
	esac
	chmod 644 "$MD/$m.ko"
	echo "$m"
done > "$MD/load.list"
say "modules: ${ORDER[*]}"

# --- our files -------------------------------------------------------------------
(cd "$HERE/rootfs" && find . -type f -printf '%P\n' | sort) | while read -r f; do
	m=644; [ -x "$HERE/rootfs/$f" ] && m=755
	install -D -m $m "$HERE/rootfs/$f" "$R/$f"
done
{
	echo "NAME=testvm"
	echo "KERNEL=$KVER"
	for p in "${PKGS[@]}"; do echo "PACKAGE=$p ${VER[$p]}"; done
	echo "BUILD_DATE=$(date -u -d "@$SDE" +%Y-%m-%dT%H:%M:%SZ)"
} > "$R/etc/testvm-release"
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

# --- ramdisk: sorted newc cpio, fixed mtimes and owners, gzip -n ---------------------
find "$R" -exec touch -h -d "@$SDE" {} +
(cd "$R" && find . -mindepth 1 -printf '%P\0' | sort -z |
	cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
	gzip -9 -n > "$WORK/out/testvm-ramdisk"

# --- kernel --------------------------------------------------------------------------
cp "$VMLINUZ" "$WORK/out/testvm-kernel"

# --- disk: 64 MiB qcow2 holding an ext4 filesystem labelled testvm-data ------------
DISK=$WORK/disk
mkdir -p "$DISK/content"
cat > "$DISK/content/README" <<EOF
testvm data disk. The testvm system runs from its initramfs (testvm-ramdisk);
this disk only exists so the image can be registered and booted as a qcow2
with kernel_id/ramdisk_id. It is not mounted by the guest.
EOF
cp "$R/etc/testvm-release" "$DISK/content/testvm-release"
find "$DISK/content" -exec touch -h -d "@$SDE" {} +
truncate -s 64M "$DISK/disk.raw"
FSUUID=7e57a11e-7e57-4e57-8e57-7e57da7ad15c
E2FSPROGS_FAKE_TIME=$SDE mkfs.ext4 -q -F -L testvm-data -U "$FSUUID" \
	-E "hash_seed=$FSUUID,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0" \
	-d "$DISK/content" "$DISK/disk.raw"
# mke2fs -d copies atime/ctime from the source files: pin every inode's times.
(cd "$DISK/content" && { echo /; find . -mindepth 1 -printf '/%P\n'; } | sort |
	while read -r p; do
		for t in atime ctime mtime crtime; do echo "sif \"$p\" $t @$SDE"; done
	done) > "$DISK/debugfs.cmds"
E2FSPROGS_FAKE_TIME=$SDE debugfs -w -f "$DISK/debugfs.cmds" "$DISK/disk.raw" \
	> "$DISK/debugfs.log" 2>&1
if grep -v -e '^debugfs' -e '^$' "$DISK/debugfs.log" >&2; then die "debugfs failed"; fi
qemu-img convert -q -f raw -O qcow2 -o compat=1.1 "$DISK/disk.raw" "$WORK/out/testvm.qcow2"

(cd "$WORK/out" && sha256sum "${OUTPUTS[@]}" > SHA256SUMS)

# --- install into OUTDIR ----------------------------------------------------------------
mkdir -p "$OUTDIR"
rm -f "$OUTDIR/$STAMP_NAME"
for f in "${OUTPUTS[@]}" SHA256SUMS; do
	cp "$WORK/out/$f" "$OUTDIR/.$f.new"
	mv -f "$OUTDIR/.$f.new" "$OUTDIR/$f"
done
echo "$INPUTS" > "$OUTDIR/$STAMP_NAME"

say "built $OUTDIR:"
(cd "$OUTDIR" && for f in "${OUTPUTS[@]}"; do
	printf '  %-16s %9s bytes\n' "$f" "$(stat -c %s "$f")"
done) >&2
cat "$OUTDIR/SHA256SUMS"
