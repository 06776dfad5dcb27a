"""The compute service (Nova v2.1 under /compute), driven by the real ``openstack`` client.

A cloud of its own is started with three simulated hosts (the fake driver) and the testvm
image. Actions are asked for with the client; their outcome is awaited over raw HTTP
(``_wait``), which is much faster than the client's own ``--wait`` (it polls every 5 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import cli_fails, in_parallel, os_cli, unique, user_env

TESTVM_DIR = Path(os.environ.get("FERROSTACK_TESTVM_DIR") or "/tmp/tvA")
HOSTS = 3
DEADLINE = 60.0


# --------------------------------------------------------------------------------------------
# Helpers


def _nova(cloud, method, path, token=None, body=None, mv="2.96"):
    """``method`` ``/compute/v2.1/<path>``; returns (status, parsed body)."""
    url = f"{cloud.url}/compute/v2.1/{path.lstrip('/')}"
    hdrs = {
        "X-Auth-Token": token or cloud.admin_token,
        "Accept": "application/json",
        "OpenStack-API-Version": f"compute {mv}",
    }
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, json.loads(raw) if raw else None


def _server(cloud, server_id) -> dict:
    """The server as the admin sees it (host attributes included)."""
    status, body = _nova(cloud, "GET", f"servers/{server_id}")
    assert status == 200, body
    return body["server"]


def _wait(cloud, server_id, status: str) -> dict:
    """Polls until the server is in ``status`` with no task in progress."""
    deadline = time.monotonic() + DEADLINE
    while True:
        s = _server(cloud, server_id)
        if s["status"] == status and s["OS-EXT-STS:task_state"] is None:
            return s
        assert status == "ERROR" or s["status"] != "ERROR", f"{server_id} went to ERROR: {s.get('fault')}"
        assert time.monotonic() < deadline, f"{server_id} never reached {status}: {s}"
        time.sleep(0.1)


def _wait_gone(cloud, server_id) -> None:
    deadline = time.monotonic() + DEADLINE
    while _nova(cloud, "GET", f"servers/{server_id}")[0] != 404:
        assert time.monotonic() < deadline, f"{server_id} was never deleted"
        time.sleep(0.1)


def _host(cloud, server_id) -> str:
    return _server(cloud, server_id)["OS-EXT-SRV-ATTR:host"]


def _create(env, name, *extra) -> str:
    """``server create`` without waiting; returns the id."""
    s = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--nic", "none", *extra, name)
    return s["id"]


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def cc(cloud_factory, tmp_path_factory):
    """A cloud with three fake hosts and the testvm image (the fixtures start the binary with
    fixed flags: a wrapper adds these)."""
    if not all((TESTVM_DIR / f).is_file() for f in ("testvm-kernel", "testvm-ramdisk", "testvm.qcow2")):
        pytest.skip(f"no prebuilt testvm in {TESTVM_DIR}")
    wrapper = tmp_path_factory.mktemp("compute-bin") / "ferrostack-compute"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{os.environ["FERROSTACK_BIN"]}" "$@" --compute-hosts {HOSTS} --testvm-dir "{TESTVM_DIR}"\n'
    )
    wrapper.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERROSTACK_BIN", str(wrapper))
        c = cloud_factory(unique("compute"))
    # Wait until every simulated host has registered.
    deadline = time.monotonic() + DEADLINE
    while True:
        status, body = _nova(c, "GET", "os-hypervisors", mv="2.53")
        if status == 200 and len(body["hypervisors"]) == HOSTS:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    return c


@pytest.fixture(scope="module")
def hosts(cc) -> list:
    _, body = _nova(cc, "GET", "os-hypervisors", mv="2.53")
    return sorted(h["hypervisor_hostname"] for h in body["hypervisors"])


@pytest.fixture(scope="module")
def member(cc):
    """A member of a fresh project: (env, project)."""
    user, project = cc.user_with_role("member")
    return user_env(cc.env, user["name"], user["password"], project=project["name"]), project


# --------------------------------------------------------------------------------------------
# The user story


def _http_server(cloud, token, name) -> str:
    """Creates a server over HTTP (set-up that is not under test); returns the id."""
    req = urllib.request.Request(
        f"{cloud.url}/image/v2/images?name=testvm", headers={"X-Auth-Token": token, "Accept": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        images = json.loads(r.read())["images"]
    body = {"server": {"name": name, "imageRef": images[0]["id"], "flavorRef": "1", "networks": "none"}}
    status, created = _nova(cloud, "POST", "servers", token=token, body=body)
    assert status == 202, created
    return created["server"]["id"]


def test_flavors_keypair_and_a_server_through_its_actions(cc, member, tmp_path):
    env, project = member
    user_token, _ = cc.password_token(env["OS_USERNAME"], env["OS_PASSWORD"], project=project["id"])
    # Two more servers to run actions on side by side with the first one (set-up).
    vm2, vm3 = _http_server(cc, user_token, "vm2"), _http_server(cc, user_token, "vm3")

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    flavors, kp = in_parallel(
        lambda: {f["Name"] for f in os_cli(env, "flavor", "list")},
        lambda: os_cli(env, "keypair", "create", "--public-key", f"{key}.pub", "k"),
    )
    assert {"m1.nano", "m1.micro", "m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= flavors
    assert kp["name"] == "k" and kp["fingerprint"], kp

    s = os_cli(
        env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--key-name", "k", "--nic", "none",
        "--wait", "vm1",
    )  # fmt: skip
    vm1 = s["id"]
    assert s["status"] == "ACTIVE", s
    _wait(cc, vm2, "ACTIVE")
    _wait(cc, vm3, "ACTIVE")
    listing, shown = in_parallel(
        lambda: os_cli(env, "server", "list"),
        lambda: os_cli(env, "server", "show", "vm1"),
    )
    assert sorted((r["Name"], r["Status"]) for r in listing) == [("vm1", "ACTIVE"), ("vm2", "ACTIVE"), ("vm3", "ACTIVE")]
    row = next(r for r in listing if r["Name"] == "vm1")
    assert row["Flavor"] == "m1.tiny" and row["Image"] == "testvm", listing
    assert shown["id"] == vm1 and shown["key_name"] == "k" and shown["status"] == "ACTIVE", shown

    def steps(sid, *chain):
        for args, status in chain:
            os_cli(env, "server", *args, sid)
            _wait(cc, sid, status)

    def lock_chain():
        steps(vm3, (("shelve",), "SHELVED_OFFLOADED"), (("unshelve",), "ACTIVE"))
        os_cli(env, "server", "lock", "--reason", "audit", vm3)
        _, shown = _nova(cc, "GET", f"servers/{vm3}", token=user_token, mv="2.73")
        assert (shown["server"]["locked"], shown["server"]["locked_reason"]) == (True, "audit"), shown
        res = cli_fails(env, "server", "stop", vm3, status=409)
        assert "is locked" in res.stderr, res.stderr
        os_cli(env, "server", "unlock", vm3)
        steps(vm3, (("stop",), "SHUTOFF"))

    in_parallel(
        lambda: steps(
            vm1, (("reboot",), "ACTIVE"), (("reboot", "--hard"), "ACTIVE"), (("stop",), "SHUTOFF"), (("start",), "ACTIVE")
        ),
        lambda: steps(
            vm2, (("pause",), "PAUSED"), (("unpause",), "ACTIVE"), (("suspend",), "SUSPENDED"), (("resume",), "ACTIVE")
        ),
        lock_chain,
    )

    actions, _ = in_parallel(
        lambda: os_cli(env, "server", "event", "list", vm1),
        lambda: os_cli(env, "server", "delete", vm2),
    )
    assert [a["Action"] for a in actions] == ["start", "stop", "reboot", "reboot", "create"], actions
    _wait_gone(cc, vm2)


def test_resize_revert_confirm_and_rebuild(cc, member):
    env, _ = member
    sid = _create(env, "grower")
    _wait(cc, sid, "ACTIVE")
    os_cli(env, "server", "resize", "--flavor", "m1.small", sid)
    s = _wait(cc, sid, "VERIFY_RESIZE")
    assert s["flavor"]["original_name"] == "m1.small", s
    os_cli(env, "server", "resize", "revert", sid)
    s = _wait(cc, sid, "ACTIVE")
    assert s["flavor"]["original_name"] == "m1.tiny", s
    os_cli(env, "server", "resize", "--flavor", "m1.small", sid)
    _wait(cc, sid, "VERIFY_RESIZE")
    os_cli(env, "server", "resize", "confirm", sid)
    s = _wait(cc, sid, "ACTIVE")
    assert s["flavor"]["original_name"] == "m1.small", s
    migrations = os_cli(cc.env, "server", "migration", "list", "--server", sid, "--os-compute-api-version", "2.80")
    assert sorted(m["Status"] for m in migrations) == ["confirmed", "reverted"], migrations
    os_cli(env, "server", "rebuild", "--image", "testvm", "--name", "rebuilt", sid)
    s = _wait(cc, sid, "ACTIVE")
    assert s["name"] == "rebuilt", s
    actions = [a["Action"] for a in os_cli(env, "server", "event", "list", sid)]
    assert actions == ["rebuild", "confirmResize", "resize", "revertResize", "resize", "create"], actions


def test_aggregate_zone_properties_and_admin_pinning(cc, hosts):
    env = cc.env
    h1, _, h3 = hosts

    def aggregate():
        agg = os_cli(env, "aggregate", "create", "--zone", "zone1", "agg1")
        assert agg["availability_zone"] == "zone1", agg
        os_cli(env, "aggregate", "add", "host", "agg1", h1)
        os_cli(env, "aggregate", "set", "--property", "ssd=true", "agg1")

    def flavor():
        os_cli(env, "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "ssd.tiny")
        os_cli(env, "flavor", "set", "--property", "aggregate_instance_extra_specs:ssd=true", "ssd.tiny")

    in_parallel(aggregate, flavor)
    shown, zones = in_parallel(
        lambda: os_cli(env, "aggregate", "show", "agg1"),
        lambda: {z["Zone Name"] for z in os_cli(env, "availability", "zone", "list", "--compute")},
    )
    assert shown["hosts"] == [h1] and shown["properties"].get("ssd") == "true", shown
    assert "zone1" in zones, zones

    ssd, pinned, zoned = in_parallel(
        lambda: os_cli(env, "server", "create", "--image", "testvm", "--flavor", "ssd.tiny", "--nic", "none", "ssd")["id"],
        lambda: _create(env, "pinned", "--availability-zone", f"nova:{h3}"),
        lambda: _create(env, "zoned", "--availability-zone", "zone1"),
    )
    for sid in (ssd, pinned, zoned):
        _wait(cc, sid, "ACTIVE")
    assert _host(cc, ssd) == h1, "the ssd flavor needs the ssd aggregate"
    assert _host(cc, pinned) == h3, "zone:host pins the server"
    s = _server(cc, zoned)
    assert (s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-AZ:availability_zone"]) == (h1, "zone1"), s


def test_anti_affinity_group_spreads(cc, member):
    env, _ = member
    group = os_cli(env, "server", "group", "create", "--policy", "anti-affinity", "web")
    assert group["policy"] == "anti-affinity", group
    a, b = in_parallel(
        lambda: _create(env, "web-a", "--hint", f"group={group['id']}"),
        lambda: _create(env, "web-b", "--hint", f"group={group['id']}"),
    )
    _wait(cc, a, "ACTIVE")
    _wait(cc, b, "ACTIVE")
    assert _host(cc, a) != _host(cc, b)
    members = os_cli(env, "server", "group", "show", "web")["members"]
    assert sorted(members if isinstance(members, list) else members.split(", ")) == sorted([a, b])


def test_instance_quota(cc):
    user, project = cc.user_with_role("member")
    env = user_env(cc.env, user["name"], user["password"], project=project["name"])
    os_cli(cc.env, "quota", "set", "--instances", "1", project["id"])
    first = _create(env, "q1")
    res = cli_fails(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--nic", "none", "q2",
                    status=403)  # fmt: skip
    assert "Quota exceeded for instances" in res.stderr, res.stderr
    _wait(cc, first, "ACTIVE")


def test_too_large_flavor_ends_in_error_with_the_reason(cc):
    env = cc.env
    # Larger than any host (64 GiB each), and the admin project's RAM quota lifted for it.
    in_parallel(
        lambda: os_cli(env, "quota", "set", "--ram", "-1", cc.admin_project_id),
        lambda: os_cli(env, "flavor", "create", "--ram", str(100 * 1024), "--disk", "1", "--vcpus", "1", "too.big"),
    )
    sid = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "too.big", "--nic", "none", "big")["id"]
    _wait(cc, sid, "ERROR")
    shown = os_cli(env, "server", "show", sid)
    fault = shown["fault"]
    message = fault["message"] if isinstance(fault, dict) else str(fault)
    assert "No valid host was found" in message and f"RAM: {HOSTS} hosts lack" in message, shown


def test_usage_hypervisors_and_disabling_a_service(cc, hosts, member):
    env = cc.env
    _, project = member
    user, other = cc.user_with_role("member")
    token, _ = cc.password_token(user["name"], user["password"], project=other["id"])
    counted = _http_server(cc, token, "counted")
    _wait(cc, counted, "ACTIVE")
    usage, hypervisors, stats = in_parallel(
        lambda: os_cli(env, "usage", "list"),
        lambda: os_cli(env, "hypervisor", "list"),
        lambda: os_cli(env, "hypervisor", "stats", "show"),
    )
    assert any(u["Project"] in (other["name"], other["id"]) for u in usage), usage
    assert sorted(h["Hypervisor Hostname"] for h in hypervisors) == hosts, hypervisors
    assert all(h["State"] == "up" for h in hypervisors), hypervisors
    assert stats["count"] == HOSTS and stats["running_vms"] >= 1, stats

    target = hosts[1]
    os_cli(env, "compute", "service", "set", "--disable", "--disable-reason", "maintenance", target, "nova-compute")
    services = os_cli(env, "compute", "service", "list", "--long")
    row = next(s for s in services if s["Host"] == target and s["Binary"] == "nova-compute")
    assert (row["Status"], row["Disabled Reason"]) == ("disabled", "maintenance"), row
    # New servers keep off the disabled host.
    new = [_http_server(cc, token, f"after-{i}") for i in range(3)]
    for s in new:
        _wait(cc, s, "ACTIVE")
        assert _host(cc, s) != target
    os_cli(env, "compute", "service", "set", "--enable", target, "nova-compute")
