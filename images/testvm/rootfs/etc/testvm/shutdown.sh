#!/bin/sh
# run by busybox init before poweroff/reboot
echo "testvm: shutting down" > /dev/console
for p in /run/udhcpc.*.pid /run/dropbear.pid; do
	[ -r "$p" ] && kill "$(cat "$p")" 2>/dev/null
done
sync
umount -a -r 2>/dev/null
exit 0
