#!/bin/sh
# udhcpc event script for testvm: address, routes (router option or RFC 3442
# classless static routes, which OpenStack uses for 169.254.169.254), MTU, DNS.
# udhcpc passes: $interface $ip $mask (prefix length) $broadcast $router
# $staticroutes $dns $domain $mtu

[ -n "$1" ] || exit 1

resolv_conf() {
	cat /run/testvm/resolv.conf.* > /etc/resolv.conf 2>/dev/null || : > /etc/resolv.conf
}

case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	rm -f "/run/testvm/resolv.conf.$interface"
	resolv_conf
	;;
bound|renew)
	ip link set "$interface" up
	[ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
	if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/$mask "; then
		ip -4 addr flush dev "$interface"
		ip addr add "$ip/$mask" ${broadcast:+broadcast "$broadcast"} dev "$interface"
	fi
	metric=$((100 + $(cat "/sys/class/net/$interface/ifindex")))
	if [ -n "$staticroutes" ]; then
		# RFC 3442: when classless routes are given, the router option is ignored
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			if [ "$2" = 0.0.0.0 ]; then
				ip route replace "$1" dev "$interface" metric "$metric"
			else
				ip route replace "$1" via "$2" dev "$interface" metric "$metric"
			fi
			shift 2
		done
	elif [ -n "$router" ]; then
		for r in $router; do
			ip route replace default via "$r" dev "$interface" metric "$metric"
			break
		done
	fi
	mkdir -p /run/testvm
	{
		[ -n "$domain" ] && echo "search $domain"
		for s in $dns; do echo "nameserver $s"; done
	} > "/run/testvm/resolv.conf.$interface"
	resolv_conf
	echo "testvm: $interface: $ip/$mask${router:+ via $router}"
	;;
leasefail|nak)
	;;
esac
exit 0
