"""Real guests on networks: a server's port is made by the networking service, its tap made
by QEMU and plugged by the host's data plane (moved into the host's namespace, onto the
network's bridge, filtered by the nftables ruleset) before the server is ACTIVE; deleting it
takes everything away again."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time

import pytest

from conftest import os_cli, unique, user_env
from test_qemu import _nova, _qemu_pids, _serial_run, _wait_ready, qemu_cloud


@pytest.fixture(scope="module")
def qnc(cloud_factory, tmp_path_factory):
    yield from qemu_cloud(cloud_factory, tmp_path_factory, "qnet", 1)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True)


def _prefix(cloud) -> str:
    outside = (cloud.data_dir / "external-netns").read_text().strip()
    assert outside.endswith("-ext"), outside
    return outside[: -len("-ext")]


def test_a_guests_port_is_wired_into_the_data_plane_and_unwired_on_delete(qnc):
    env = qnc.env
    _, hv = _nova(qnc, "GET", "os-hypervisors/detail", mv="2.53")
    host = hv["hypervisors"][0]["hypervisor_hostname"]
    dpns = f"{_prefix(qnc)}-dp-{host}"
    # The outside world of `public` exists, with public's gateway.
    outside = f"{_prefix(qnc)}-ext"
    addrs = _run("ip", "-n", outside, "-j", "addr", "show", "dev", "brext")
    assert addrs.returncode == 0, addrs.stderr
    assert "172.24.4.1" in addrs.stdout

    net = os_cli(env, "network", "create", unique("net"))
    os_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range", "10.20.0.0/24", unique("sub"))
    server = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny",
                    "--network", net["id"], "--wait", unique("vm"))
    assert server["status"] == "ACTIVE", server
    ports = os_cli(env, "port", "list", "--server", server["id"], "--long")
    assert len(ports) == 1, ports
    port = os_cli(env, "port", "show", ports[0]["ID"])
    assert port["status"] == "ACTIVE", port
    assert port["device_owner"] == "compute:nova"
    # QEMU's NIC has the port's MAC; its tap is on the network's bridge in the host's
    # namespace, and the ruleset names it.
    pids = _qemu_pids(server["id"])
    cmdline = open(f"/proc/{pids[0]}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    assert port["mac_address"] in cmdline
    tap = "tap" + port["id"][:11]
    link = _run("ip", "-n", dpns, "-j", "link", "show", "dev", tap)
    assert link.returncode == 0, link.stderr
    assert json.loads(link.stdout)[0]["master"] == "br" + net["id"][:11]
    ruleset = _run("ip", "netns", "exec", dpns, "nft", "list", "table", "bridge", "ferrostack")
    assert tap in ruleset.stdout, ruleset.stdout[-2000:]
    # The server shows the port's address.
    shown = os_cli(env, "server", "show", server["id"])
    assert port["fixed_ips"][0]["ip_address"] in json.dumps(shown["addresses"]), shown

    # Deleted: the port goes, and the host, left with no network, drops its namespace.
    os_cli(env, "server", "delete", "--wait", server["id"])
    assert os_cli(env, "port", "list", "--device-id", server["id"]) == []
    deadline = time.monotonic() + 30
    while dpns in _run("ip", "netns", "list").stdout:
        assert time.monotonic() < deadline, "the host's data-plane namespace stayed"
        time.sleep(0.5)
    os_cli(env, "network", "delete", net["id"])


def test_two_guests_get_their_addresses_by_dhcp_and_reach_each_other(qnc):
    """The network's DHCP server (dnsmasq in its namespace on the host) gives each guest its
    port's address; the default security group lets members reach each other."""
    env = qnc.env
    net = os_cli(env, "network", "create", unique("net"))
    os_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range", "10.30.0.0/24", unique("sub"))
    names = [unique("vm"), unique("vm")]
    servers = [
        os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny",
               "--network", net["id"], "--wait", n)
        for n in names
    ]
    ips = []
    for s in servers:
        port = os_cli(env, "port", "list", "--server", s["id"], "--long")[0]
        ip = os_cli(env, "port", "show", port["ID"])["fixed_ips"][0]["ip_address"]
        log = _wait_ready(qnc, s["id"])
        ready = [line for line in log.splitlines() if "testvm ready" in line][-1]
        assert ip in ready, f"{s['id']} did not get {ip} by DHCP: {ready}"
        ips.append(ip)
    out = _serial_run(qnc, servers[0]["id"], f"ping -c 2 -W 2 {ips[1]} && echo PING-OK")
    assert "PING-OK" in out, out
    # Each read its identity from the metadata service (no config drive), through the route
    # to 169.254.169.254 DHCP gave it; each sees its own and never the other's.
    for i, s in enumerate(servers):
        log = _wait_ready(qnc, s["id"])
        assert "metadata source: metadata-service" in log, log[-2000:]
        ready = [line for line in log.splitlines() if "testvm ready" in line][-1]
        assert f"instance_id={s['id']}" in ready, ready
        out = _serial_run(qnc, s["id"], "wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json; echo; "
                          "wget -q -O - http://169.254.169.254/latest/meta-data/local-ipv4; echo MD-DONE")
        assert f'"uuid": "{s["id"]}"' in out or f'"uuid":"{s["id"]}"' in out, out
        assert servers[1 - i]["id"] not in out, out
        assert ips[i] in out, out
    for s in servers:
        os_cli(env, "server", "delete", "--wait", s["id"])
    os_cli(env, "network", "delete", net["id"])


def _outside(cloud, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Runs ``argv`` in the namespace standing for the world outside (where `public`'s
    gateway 172.24.4.1 is)."""
    return subprocess.run(["ip", "netns", "exec", f"{_prefix(cloud)}-ext", *argv],
                          capture_output=True, text=True, timeout=timeout)


def _until(what: str, check, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(1)


def test_a_router_takes_guests_outside_and_a_floating_ip_brings_the_outside_in(qnc, tmp_path):
    """The issue's walk-through: a guest behind a router reaches the outside through SNAT; its
    floating IP answers HTTP from the outside only while its security group allows it, and
    ssh with the key pair; deleting it all leaves no router namespace behind."""
    env = qnc.env
    net = os_cli(env, "network", "create", unique("app"))
    sub = os_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range", "10.40.0.0/24",
                 unique("app-v4"))
    router = os_cli(env, "router", "create", unique("r"))
    os_cli(env, "router", "set", "--external-gateway", "public", router["id"], json_output=False)
    os_cli(env, "router", "add", "subnet", router["id"], sub["id"], json_output=False)
    sg = os_cli(env, "security", "group", "create", unique("web"))
    http = os_cli(env, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80",
                  "--remote-ip", "0.0.0.0/0", sg["id"], json_output=True)
    os_cli(env, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
           "--remote-ip", "0.0.0.0/0", sg["id"])
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kp = unique("kp")
    os_cli(env, "keypair", "create", "--public-key", f"{key}.pub", kp)
    # The key comes from the metadata service.
    server = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny",
                    "--network", net["id"], "--security-group", sg["id"], "--key-name", kp,
                    "--wait", unique("vm1"))
    assert server["status"] == "ACTIVE", server
    _wait_ready(qnc, server["id"])
    # The router is set up on the host: its ports are ACTIVE.
    _until("router ports ACTIVE", lambda: all(
        p["Status"] == "ACTIVE" for p in os_cli(env, "port", "list", "--router", router["id"], "--long")))
    host = _nova(qnc, "GET", "os-hypervisors/detail", mv="2.53")[1]["hypervisors"][0]["hypervisor_hostname"]
    rns = f"{_prefix(qnc)}-router-{host}-{router['id']}"
    assert rns in _run("ip", "netns", "list").stdout

    # Outbound: SNAT to the router's gateway address.
    out = _serial_run(qnc, server["id"], "ping -c 2 -W 2 172.24.4.1 && echo PING-OK")
    assert "PING-OK" in out, out

    fip = os_cli(env, "floating", "ip", "create", "public")
    address = fip["floating_ip_address"]
    os_cli(env, "server", "add", "floating", "ip", server["id"], address, json_output=False)
    _until("floating IP ACTIVE", lambda: os_cli(env, "floating", "ip", "show", fip["id"])["status"] == "ACTIVE")
    page = _until("HTTP through the floating IP", lambda: (
        r := _outside(qnc, "curl", "-sS", "-m", "5", f"http://{address}/")).returncode == 0 and r.stdout)
    assert page.strip(), page
    ssh = _outside(qnc, "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
                   "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
                   f"testvm@{address}", "echo SSH-OK", timeout=60)
    assert "SSH-OK" in ssh.stdout, ssh.stderr
    # Delete the HTTP rule: the floating IP stops answering on port 80.
    os_cli(env, "security", "group", "rule", "delete", http["id"], json_output=False)
    _until("HTTP refused", lambda: _outside(qnc, "curl", "-sS", "-m", "3", f"http://{address}/").returncode != 0)

    os_cli(env, "server", "delete", "--wait", server["id"], json_output=False)
    os_cli(env, "floating", "ip", "delete", fip["id"], json_output=False)
    os_cli(env, "router", "remove", "subnet", router["id"], sub["id"], json_output=False)
    os_cli(env, "router", "delete", router["id"], json_output=False)
    _until("router namespace gone", lambda: rns not in _run("ip", "netns", "list").stdout)
    os_cli(env, "network", "delete", net["id"], json_output=False)
    os_cli(env, "security", "group", "delete", sg["id"], json_output=False)


def test_a_server_created_with_no_network_gets_one_made_that_reaches_outside(qnc):
    """Get-me-a-network: a project with no network creates a server naming none (the client
    sends `networks: auto`); the cloud makes the project a network, a subnet from the default
    pool and a router to `public`, and the guest gets its address by DHCP and reaches the
    outside through the router."""
    env = qnc.env
    project = unique("gman")
    user, password = unique("u"), unique("pw")
    os_cli(env, "project", "create", project)
    os_cli(env, "user", "create", "--password", password, "--project", project, user)
    os_cli(env, "role", "add", "--user", user, "--project", project, "member", json_output=False)
    mine = user_env(env, user, password, project=project)
    # The dry run succeeds (it fails with Neutron's 409 when a requirement is missing; the
    # client shows no more than that, as with Neutron).
    os_cli(mine, "network", "auto", "allocated", "topology", "create", "--check-resources")
    server = os_cli(mine, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--wait", unique("vm2"))
    assert server["status"] == "ACTIVE", server
    nets = os_cli(mine, "network", "list")
    assert [n["Name"] for n in nets if n["Name"] != "public"] == ["auto_allocated_network"], nets
    ports = os_cli(mine, "port", "list", "--server", server["id"], "--long")
    ip = os_cli(mine, "port", "show", ports[0]["ID"])["fixed_ips"][0]["ip_address"]
    assert ip.startswith("10.128."), ip
    log = _wait_ready(qnc, server["id"])
    ready = [line for line in log.splitlines() if "testvm ready" in line][-1]
    assert ip in ready, ready
    router = os_cli(mine, "router", "list")[0]
    _until("router ports ACTIVE", lambda: all(
        p["Status"] == "ACTIVE" for p in os_cli(mine, "port", "list", "--router", router["ID"], "--long")))
    out = _serial_run(qnc, server["id"], "ping -c 2 -W 2 172.24.4.1 && echo PING-OK")
    assert "PING-OK" in out, out
    # A second server takes the same network.
    again = os_cli(mine, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--nic", "auto",
                   "--wait", unique("vm3"))
    assert list(again["addresses"].keys()) == ["auto_allocated_network"] or "auto_allocated_network" in json.dumps(
        again["addresses"]), again
    for s in (server, again):
        os_cli(mine, "server", "delete", "--wait", s["id"], json_output=False)
    os_cli(mine, "network", "auto", "allocated", "topology", "delete", json_output=False)
    assert [n for n in os_cli(mine, "network", "list") if n["Name"] != "public"] == []
    assert os_cli(mine, "router", "list") == []


def test_a_port_hot_plugged_into_a_running_guest_carries_traffic_and_unplugs(qnc):
    """`server add port` puts a second NIC into the running guest (QMP hot-plug at the NIC's
    own PCI slot), the data plane wires it, and the guest gets the port's address by DHCP on
    it and reaches that network; `server remove port` takes it out of the guest again and
    leaves the user's port unbound."""
    env = qnc.env
    password = "Adm1n-" + unique("pw")[-8:]
    front = os_cli(env, "network", "create", unique("front"))
    os_cli(env, "subnet", "create", "--network", front["id"], "--subnet-range", "10.60.0.0/24", unique("sub"))
    back = os_cli(env, "network", "create", unique("back"))
    os_cli(env, "subnet", "create", "--network", back["id"], "--subnet-range", "10.61.0.0/24", unique("sub"))
    server = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--network", front["id"],
                    "--config-drive", "True", "--password", password, "--wait", unique("vm"))
    _wait_ready(qnc, server["id"])
    port = os_cli(env, "port", "create", "--network", back["id"], "--fixed-ip", "ip-address=10.61.0.50", unique("p"))
    os_cli(env, "server", "add", "port", server["id"], port["id"], json_output=False)
    _until("hot-plugged port ACTIVE", lambda: os_cli(env, "port", "show", port["id"])["status"] == "ACTIVE")
    shown = os_cli(env, "server", "show", server["id"])
    assert "10.61.0.50" in json.dumps(shown["addresses"]), shown
    dhcp = [p for p in os_cli(env, "port", "list", "--network", back["id"], "--long")
            if p["Device Owner"] == "network:dhcp"]
    assert dhcp, "the network has no DHCP port"
    dhcp_ip = os_cli(env, "port", "show", dhcp[0]["ID"])["fixed_ips"][0]["ip_address"]
    find = f"for n in /sys/class/net/*; do grep -qi {port['mac_address']} $n/address && basename $n; done"
    # One console session, root's, for every command (the console keeps the login).
    def run(cmd: str) -> str:
        return _serial_run(qnc, server["id"], cmd, user="root", password=password)

    # What the guest prints, not the command echoed as typed: "NIC-$((1+1))" prints NIC-2.
    def plugged() -> bool:
        return "NIC-2-HERE" in run(f'[ -n "$({find})" ] && echo NIC-$((1+1))-HERE')

    _until("the guest sees the new NIC", plugged, seconds=60)
    out = run(f"n=$({find}); ip link set $n up; udhcpc -i $n -s /etc/testvm/udhcpc.sh -n -q -t 5 >/dev/null 2>&1; "
              f"ip -4 addr show $n; ping -c 2 -W 2 {dhcp_ip} && echo PING-OK")
    assert "10.61.0.50" in out, out
    assert "PING-OK" in out, out

    os_cli(env, "server", "remove", "port", server["id"], port["id"], json_output=False)
    _until("the NIC leaves the guest", lambda: not plugged(), seconds=60)
    left = os_cli(env, "port", "show", port["id"])
    assert left["device_id"] == "" and left["status"] == "DOWN", left
    assert "10.61.0.50" not in json.dumps(os_cli(env, "server", "show", server["id"])["addresses"])
    os_cli(env, "server", "delete", "--wait", server["id"], json_output=False)
    os_cli(env, "port", "delete", port["id"], json_output=False)
    for n in (front, back):
        os_cli(env, "network", "delete", n["id"], json_output=False)


def test_a_guest_configures_ipv6_itself_from_its_routers_advertisements(qnc):
    """IPv6 by SLAAC: the router's interface on a subnet whose RA and address modes are
    `slaac` advertises the prefix (radvd in the router's namespace); the guest's kernel takes
    the EUI-64 address the port was given, and guest and router reach each other over IPv6
    as the guest's security group allows."""
    env = qnc.env
    net = os_cli(env, "network", "create", unique("v6"))
    v4 = os_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range", "10.42.0.0/24",
                unique("v6-v4"))
    v6 = os_cli(env, "subnet", "create", "--network", net["id"], "--ip-version", "6",
                "--subnet-range", "fd00:42::/64", "--ipv6-ra-mode", "slaac", "--ipv6-address-mode", "slaac",
                unique("v6-v6"))
    router = os_cli(env, "router", "create", unique("r6"))
    for s in (v4, v6):
        os_cli(env, "router", "add", "subnet", router["id"], s["id"], json_output=False)
    sg = os_cli(env, "security", "group", "create", unique("icmp6"))
    os_cli(env, "security", "group", "rule", "create", "--ethertype", "IPv6", "--protocol", "ipv6-icmp", sg["id"])
    server = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny",
                    "--network", net["id"], "--security-group", sg["id"], "--wait", unique("vm6"))
    _wait_ready(qnc, server["id"])
    port = os_cli(env, "port", "list", "--server", server["id"], "--long")[0]
    fixed = os_cli(env, "port", "show", port["ID"])["fixed_ips"]
    address = next(f["ip_address"] for f in fixed if ":" in f["ip_address"])
    assert ipaddress.ip_address(address) in ipaddress.ip_network("fd00:42::/64"), fixed
    gateway = v6["gateway_ip"]

    # The guest's kernel configured the port's address from the advertised prefix.
    hexed = ipaddress.ip_address(address).exploded.replace(":", "")
    _until("the guest's SLAAC address", lambda: hexed in _serial_run(qnc, server["id"], "cat /proc/net/if_inet6"),
           90)
    out = _serial_run(qnc, server["id"], f"ping -c 2 -W 2 {gateway} && echo PING6-OK")
    assert "PING6-OK" in out, out
    host = _nova(qnc, "GET", "os-hypervisors/detail", mv="2.53")[1]["hypervisors"][0]["hypervisor_hostname"]
    rns = f"{_prefix(qnc)}-router-{host}-{router['id']}"
    _until("the router reaching the guest over IPv6",
           lambda: _run("ip", "netns", "exec", rns, "ping", "-c", "1", "-W", "2", address).returncode == 0, 30)

    os_cli(env, "server", "delete", "--wait", server["id"], json_output=False)
    for s in (v4, v6):
        os_cli(env, "router", "remove", "subnet", router["id"], s["id"], json_output=False)
    os_cli(env, "router", "delete", router["id"], json_output=False)
    _until("router namespace gone", lambda: rns not in _run("ip", "netns", "list").stdout)
    os_cli(env, "network", "delete", net["id"], json_output=False)
    os_cli(env, "security", "group", "delete", sg["id"], json_output=False)
