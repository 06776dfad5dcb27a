"""Real guests moving between two QEMU hosts of one machine (``--compute-hosts 2``), driven by
the real ``openstack`` client: a resize to the other host and its revert and confirm, a live
migration aborted and one forced to complete, an evacuation. What the guest wrote to its disk
travels with it (a pattern written into the disk file while the server is off, read back with
qemu-io wherever it runs); a live migration keeps the very same boot of the guest (its
kernel's boot id, read over the serial console websocket before and after); each host a guest
left keeps nothing of it.

Live migrations here are capped at 1 MiB/s (``--live-migration-bandwidth 1``): far too slow
to finish within the test on their own, so there is time to watch one's progress and abort
it, and force-complete is what ends the others.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import os_cli, unique
from test_compute import _nova, _server, _wait, _wait_gone
from test_qemu import BOOT_DEADLINE, _action, _qemu_pids, _serial_run, _wait_ready, qemu_cloud

PATTERN = "-P 0x5a 3M 64k"


@pytest.fixture(scope="module")
def mc(cloud_factory, tmp_path_factory):
    """Two QEMU hosts; a resize always leaves its host (as with Nova's default)."""
    yield from qemu_cloud(
        cloud_factory, tmp_path_factory, "qemu-moves", 2,
        "--allow-resize-to-same-host", "false", "--live-migration-bandwidth", "1",
    )


@pytest.fixture(scope="module")
def hosts(mc) -> list[str]:
    _, body = _nova(mc, "GET", "os-hypervisors/detail", mv="2.53")
    return sorted(h["hypervisor_hostname"] for h in body["hypervisors"])


@pytest.fixture(scope="module")
def vm(mc):
    created = os_cli(mc.env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--no-network", unique("mv"))
    _wait(mc, created["id"], "ACTIVE")
    _wait_ready(mc, created["id"])
    return created["id"]


def _host(cloud, sid) -> str:
    return _server(cloud, sid)["OS-EXT-SRV-ATTR:host"]


def _guest_dir(cloud, host, sid) -> Path:
    return cloud.data_dir / "hosts" / host / "instances" / sid


def _qemu_io(disk: Path, command: str) -> str:
    ro = ["-r", "-U"] if command.startswith("read") else []
    out = subprocess.run(["qemu-io", *ro, "-f", "qcow2", "-c", command, str(disk)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def _has_pattern(disk: Path) -> bool:
    return "verification failed" not in _qemu_io(disk, f"read {PATTERN}")


def _virtual_size(disk: Path) -> int:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)], capture_output=True, text=True)
    return json.loads(out.stdout)["virtual-size"]


def _boots_on(cloud, host, sid) -> int:
    """Boots of the guest seen in its console log on ``host`` (which goes when the guest leaves)."""
    logs = _guest_dir(cloud, host, sid).glob("console.log*")
    return sum(p.read_text(errors="replace").count("testvm ready") for p in logs)


def _wait_until(what: str, check) -> None:
    deadline = time.monotonic() + BOOT_DEADLINE
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def _wait_moved(cloud, sid, status: str, host: str) -> dict:
    deadline = time.monotonic() + BOOT_DEADLINE
    while True:
        s = _wait(cloud, sid, status)
        if s["OS-EXT-SRV-ATTR:host"] == host:
            return s
        assert time.monotonic() < deadline, s
        time.sleep(0.2)


def _boot_id(cloud, sid) -> str:
    out = _serial_run(cloud, sid, "cat /proc/sys/kernel/random/boot_id")
    ids = [line.strip() for line in out.splitlines() if len(line.strip()) == 36 and line.count("-") == 4]
    assert ids, out
    return ids[0]


def _migrations(cloud, sid) -> list[dict]:
    _, body = _nova(cloud, "GET", f"os-migrations?instance_uuid={sid}", mv="2.80")
    return body["migrations"]


def test_resize_to_another_host_keeps_the_data_and_revert_restores_it(mc, hosts, vm):
    src = _host(mc, vm)
    (dst,) = [h for h in hosts if h != src]
    _action(mc, vm, {"os-stop": None})
    _wait(mc, vm, "SHUTOFF")
    _qemu_io(_guest_dir(mc, src, vm) / "disk.qcow2", f"write {PATTERN}")
    _action(mc, vm, {"os-start": None})
    _wait(mc, vm, "ACTIVE")
    _wait_ready(mc, vm, 2)

    os_cli(mc.env, "server", "resize", "--flavor", "m1.small", vm, json_output=False)
    s = _wait_moved(mc, vm, "VERIFY_RESIZE", dst)
    assert s["flavor"]["original_name"] == "m1.small"
    _wait_until("the guest boots on its new host", lambda: _boots_on(mc, dst, vm) == 1)
    disk = _guest_dir(mc, dst, vm) / "disk.qcow2"
    assert _virtual_size(disk) == 20 << 30
    assert _has_pattern(disk), "the disk's data moved with the guest"
    # The source keeps its copy, powered off, until the resize is confirmed.
    assert (_guest_dir(mc, src, vm) / "disk.qcow2").is_file()
    assert len(_qemu_pids(vm)) == 1
    assert not list((mc.data_dir / "transfers").glob("*")), "the handed-over disk was dropped"

    os_cli(mc.env, "server", "resize", "revert", vm, json_output=False)
    s = _wait_moved(mc, vm, "ACTIVE", src)
    assert s["flavor"]["original_name"] == "m1.tiny"
    _wait_until("the kept copy boots again", lambda: _boots_on(mc, src, vm) == 3)
    _wait_until("the destination removes its copy", lambda: not _guest_dir(mc, dst, vm).exists())
    assert _virtual_size(_guest_dir(mc, src, vm) / "disk.qcow2") == 1 << 30
    assert _has_pattern(_guest_dir(mc, src, vm) / "disk.qcow2")

    os_cli(mc.env, "server", "resize", "--flavor", "m1.small", vm, json_output=False)
    _wait_moved(mc, vm, "VERIFY_RESIZE", dst)
    os_cli(mc.env, "server", "resize", "confirm", vm, json_output=False)
    _wait(mc, vm, "ACTIVE")
    _wait_until("the source removes its copy", lambda: not _guest_dir(mc, src, vm).exists())
    assert not (mc.run_dir / src / vm).exists()
    assert _has_pattern(_guest_dir(mc, dst, vm) / "disk.qcow2")
    resizes = [m["status"] for m in _migrations(mc, vm) if m["migration_type"] == "resize"]
    assert resizes == ["confirmed", "reverted"], resizes


def _live_migration_under_way(cloud, sid) -> dict:
    """The server's live migration once its source reports how much memory it is sending."""
    deadline = time.monotonic() + BOOT_DEADLINE
    while True:
        _, body = _nova(cloud, "GET", f"servers/{sid}/migrations", mv="2.80")
        ms = body["migrations"]
        if ms and ms[0]["memory_total_bytes"]:
            return ms[0]
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def _live_migrate(cloud, sid, *host: str) -> dict:
    target = ["--host", host[0]] if host else []
    os_cli(
        cloud.env, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", *target, sid,
        json_output=False,
    )
    return _live_migration_under_way(cloud, sid)


def _force_complete(cloud, sid, mid: int) -> None:
    os_cli(
        cloud.env, "--os-compute-api-version", "2.22", "server", "migration", "force", "complete", sid, str(mid),
        json_output=False,
    )


def test_live_migration_is_aborted_or_forced_and_keeps_the_guest_running(mc, hosts, vm):
    src = _host(mc, vm)
    _wait_until("the guest is up", lambda: _boots_on(mc, src, vm) >= 1)
    (dst,) = [h for h in hosts if h != src]
    before = _boot_id(mc, vm)
    boots = _boots_on(mc, src, vm)
    pids = _qemu_pids(vm)

    # Aborted while it sends: the guest runs on where it was; the destination keeps nothing.
    m = _live_migrate(mc, vm, dst)
    assert m["status"] == "running" and m["dest_compute"] == dst, m
    assert 0 < m["memory_processed_bytes"] < m["memory_total_bytes"], m
    # By uuid: this client's lookup by numeric id passes its arguments to the SDK swapped.
    shown = os_cli(mc.env, "--os-compute-api-version", "2.80", "server", "migration", "show", vm, m["uuid"], json_output=True)
    assert shown["Status"] in ("running", "post-migrating"), shown
    assert shown["Memory Total Bytes"] == m["memory_total_bytes"], shown
    os_cli(mc.env, "--os-compute-api-version", "2.24", "server", "migration", "abort", vm, str(m["id"]), json_output=False)
    s = _wait_moved(mc, vm, "ACTIVE", src)
    assert s["OS-EXT-STS:power_state"] == 1
    live = [x for x in _migrations(mc, vm) if x["id"] == m["id"]]
    assert live[0]["status"] == "cancelled", live
    _wait_until("the destination removes what it prepared", lambda: not _guest_dir(mc, dst, vm).exists())
    assert not (mc.run_dir / dst / vm).exists()
    assert _qemu_pids(vm) == pids, "the same QEMU runs the guest"
    assert _boot_id(mc, vm) == before

    # Forced to complete: the migration ends at once despite the cap.
    m = _live_migrate(mc, vm, dst)
    _force_complete(mc, vm, m["id"])
    s = _wait_moved(mc, vm, "ACTIVE", dst)
    assert s["OS-EXT-STS:power_state"] == 1, "running again after the pause that forced it"
    live = [x for x in _migrations(mc, vm) if x["id"] == m["id"]]
    assert live[0]["status"] == "completed", live
    assert live[0]["source_compute"] == src and live[0]["dest_compute"] == dst, live
    # The same boot of the same guest, now in another QEMU, still answering on its console.
    assert _boot_id(mc, vm) == before
    assert _boots_on(mc, dst, vm) == 0 and boots >= 1, "the guest did not boot again"
    assert len(_qemu_pids(vm)) == 1 and _qemu_pids(vm) != pids
    assert _has_pattern(_guest_dir(mc, dst, vm) / "disk.qcow2")
    _wait_until("the source removes its copy", lambda: not _guest_dir(mc, src, vm).exists())
    assert not (mc.run_dir / src / vm).exists()

    # And back, wherever the scheduler sends it (the only other host).
    m = _live_migrate(mc, vm)
    _force_complete(mc, vm, m["id"])
    _wait_moved(mc, vm, "ACTIVE", src)
    assert _boot_id(mc, vm) == before
    _wait_until("the other host removes its copy", lambda: not _guest_dir(mc, dst, vm).exists())


def test_evacuation_rebuilds_the_server_on_the_other_host(mc, hosts, vm):
    src = _host(mc, vm)
    (dst,) = [h for h in hosts if h != src]
    os_cli(mc.env, "--os-compute-api-version", "2.11", "compute", "service", "set", "--down", src, "nova-compute", json_output=False)
    try:
        # Before 2.95 an evacuated server runs again where it lands (from 2.95 it is stopped).
        os_cli(mc.env, "--os-compute-api-version", "2.29", "server", "evacuate", vm)
        _wait_moved(mc, vm, "ACTIVE", dst)
        # Rebuilt from its image on the new host: a new boot there.
        _wait_until("the guest boots on the other host", lambda: _boots_on(mc, dst, vm) == 1)
        _wait_until("the down host removes its copy", lambda: not _guest_dir(mc, src, vm).exists())
        assert len(_qemu_pids(vm)) == 1
    finally:
        os_cli(mc.env, "--os-compute-api-version", "2.11", "compute", "service", "set", "--up", src, "nova-compute", json_output=False)
    evac = [m for m in _migrations(mc, vm) if m["migration_type"] == "evacuation"]
    assert evac and evac[0]["status"] in ("done", "completed"), evac


def test_delete_leaves_nothing_on_any_host(mc, hosts, vm):
    os_cli(mc.env, "server", "delete", vm, json_output=False)
    _wait_gone(mc, vm)
    assert _qemu_pids(vm) == []
    for h in hosts:
        assert not _guest_dir(mc, h, vm).exists()
        assert not (mc.run_dir / h / vm).exists()
    assert not list((mc.data_dir / "transfers").glob("*"))


def test_guests_on_two_hosts_reach_each_other_over_vxlan_and_after_a_live_migration(mc, hosts):
    """A VXLAN network spans both hosts (unicast forwarding entries, no multicast): the guest
    on the host without the network's DHCP server gets its address across the tunnel, the
    two guests ping each other, and still do once one of them live-migrated to the other's
    host (its port's binding, the tunnels' entries and its tap follow it)."""
    env = mc.env
    net = os_cli(env, "network", "create", unique("vx"))
    assert net["provider:network_type"] == "vxlan", net
    os_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range", "10.50.0.0/24", unique("vx4"))
    ids, ips = [], []
    for h in hosts:
        s = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--network", net["id"],
                   "--availability-zone", f"nova:{h}", "--wait", unique("vx"))
        assert _host(mc, s["id"]) == h
        port = os_cli(env, "port", "list", "--server", s["id"], "--long")[0]
        ips.append(os_cli(env, "port", "show", port["ID"])["fixed_ips"][0]["ip_address"])
        ids.append(s["id"])
    for sid, ip in zip(ids, ips):
        ready = [line for line in _wait_ready(mc, sid).splitlines() if "testvm ready" in line][-1]
        assert ip in ready, f"{sid} did not get {ip} by DHCP: {ready}"
    out = _serial_run(mc, ids[0], f"ping -c 2 -W 2 {ips[1]} && echo PING-OK")
    assert "PING-OK" in out, out

    m = _live_migrate(mc, ids[1], hosts[0])
    _force_complete(mc, ids[1], m["id"])
    _wait_moved(mc, ids[1], "ACTIVE", hosts[0])
    port = os_cli(env, "port", "list", "--server", ids[1], "--long")[0]
    assert os_cli(env, "port", "show", port["ID"])["binding_host_id"] == hosts[0]
    _wait_until("the moved guest answers", lambda: "PING-OK" in _serial_run(
        mc, ids[0], f"ping -c 2 -W 2 {ips[1]} && echo PING-OK"))
    out = _serial_run(mc, ids[1], f"ping -c 2 -W 2 {ips[0]} && echo PING-OK")
    assert "PING-OK" in out, out
    for sid in ids:
        os_cli(env, "server", "delete", "--wait", sid, json_output=False)
    os_cli(env, "network", "delete", net["id"], json_output=False)
