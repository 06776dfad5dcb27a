"""Real guests: the QEMU driver (TCG here, KVM where its probe passes), driven by the real
``openstack`` client.

A cloud of its own runs one local QEMU host with the testvm image. A server boots until its
serial console says ``testvm ready``; every action then does to the running QEMU what Nova's
libvirt driver does, checked on the guest's console, its QEMU process and its files; deleting
leaves nothing behind. Outcomes are awaited over raw HTTP (``_wait``), faster than the
client's ``--wait``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import websocket

from browser import Browser
from conftest import os_cli, unique
from test_compute import _nova, _server, _wait, _wait_gone

TESTVM_DIR = Path(os.environ.get("FERROSTACK_TESTVM_DIR") or "/tmp/tvA")
# Booting the testvm under TCG takes seconds, and a busy 2-core machine can take a minute.
BOOT_DEADLINE = 180.0


def _qemu_pids(uuid: str) -> list[int]:
    """The QEMU processes running guest ``uuid`` (found by the name the driver gives them)."""
    out = subprocess.run(["pgrep", "-f", f"guest={uuid}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _cmdline(uuid: str) -> str:
    """The command line of the QEMU running guest ``uuid``."""
    return Path(f"/proc/{_qemu_pids(uuid)[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _console(cloud, server_id) -> str:
    return os_cli(cloud.env, "console", "log", "show", server_id, json_output=False)


def _host_console_log(cloud, server_id) -> str:
    """The guest's whole console log on its host (the API returns its last 100 KiB only, as
    Nova does, which a few boots of the testvm fill)."""
    logs = sorted(cloud.data_dir.glob(f"hosts/*/instances/{server_id}/console.log*"), reverse=True)
    return "".join(p.read_text(errors="replace") for p in logs)


def _boots(cloud, server_id) -> int:
    return _host_console_log(cloud, server_id).count("testvm ready")


def _wait_ready(cloud, server_id, count: int = 1) -> str:
    """Waits until the guest's console showed ``testvm ready`` ``count`` times (boots so far);
    returns the log."""
    deadline = time.monotonic() + BOOT_DEADLINE
    while True:
        log = _host_console_log(cloud, server_id)
        if log.count("testvm ready") >= count:
            return log
        assert time.monotonic() < deadline, f"{server_id}: 'testvm ready' x{count} never came:\n{log[-2000:]}"
        time.sleep(0.5)


def _serial_run(cloud, sid, command: str, user: str = "testvm", password: str = "testvm") -> str:
    """Runs ``command`` on the guest's serial console through the console proxy's websocket
    (logging in as ``user`` when asked) and returns its output."""
    url = os_cli(cloud.env, "console", "url", "show", "--serial", sid)["url"]
    ws = websocket.create_connection(url, timeout=2)
    seen, sent = "", False
    prompt = "# " if user == "root" else "$ "
    deadline = time.monotonic() + 90
    ws.send_binary(b"\n")
    try:
        while True:
            assert time.monotonic() < deadline, seen[-1000:]
            try:
                seen += ws.recv().decode(errors="replace")
            except websocket.WebSocketTimeoutException:
                continue
            if sent:
                # The marker as printed, not as echoed while typed.
                if "MARK-42\r\n" in seen:
                    return seen.split("MARK-42\r\n")[0]
            elif seen.endswith("login: "):
                ws.send_binary(f"{user}\n".encode())
                seen = ""
            elif seen.endswith("Password: "):
                ws.send_binary(f"{password}\n".encode())
                seen = ""
            elif "Login incorrect" in seen:
                raise AssertionError(f"{user} could not log in: {seen[-500:]}")
            elif prompt in seen:
                ws.send_binary(f"{command}; echo MARK-$((40+2))\n".encode())
                seen, sent = "", True
    finally:
        ws.close()


def _action(cloud, server_id, body: dict) -> None:
    status, out = _nova(cloud, "POST", f"servers/{server_id}/action", body=body)
    assert status in (200, 202), out


def _host_dirs(cloud, host: str) -> Path:
    return cloud.data_dir / "hosts" / host


def qemu_cloud(cloud_factory, tmp_path_factory, name: str, hosts: int, *extra: str):
    """Starts a cloud with ``hosts`` local QEMU hosts and the testvm image; yields it, then
    ends whatever QEMU a failed test left running."""
    if not all((TESTVM_DIR / f).is_file() for f in ("testvm-kernel", "testvm-ramdisk", "testvm.qcow2")):
        pytest.skip(f"no prebuilt testvm in {TESTVM_DIR}")
    run_dir = Path(tmp_path_factory.mktemp("run"))
    wrapper = tmp_path_factory.mktemp("qemu-bin") / "ferrostack-qemu"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{os.environ["FERROSTACK_BIN"]}" "$@" --compute-driver qemu --compute-hosts {hosts} '
        f'--testvm-dir "{TESTVM_DIR}" --run-dir "{run_dir}" --shutdown-timeout 30 {" ".join(extra)}\n'
    )
    wrapper.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERROSTACK_BIN", str(wrapper))
        c = cloud_factory(unique(name))
    c.run_dir = run_dir
    deadline = time.monotonic() + 60
    while True:
        status, body = _nova(c, "GET", "os-hypervisors/detail", mv="2.53")
        if status == 200 and len(body["hypervisors"]) == hosts:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    yield c
    subprocess.run(["pkill", "-9", "-f", str(run_dir)], check=False)


@pytest.fixture(scope="module")
def qc(cloud_factory, tmp_path_factory):
    """A cloud with one QEMU host and the testvm image."""
    yield from qemu_cloud(cloud_factory, tmp_path_factory, "qemu", 1)


@pytest.fixture(scope="module")
def host(qc) -> str:
    _, body = _nova(qc, "GET", "os-hypervisors/detail", mv="2.53")
    return body["hypervisors"][0]["hypervisor_hostname"]


@pytest.fixture(scope="module")
def vm(qc):
    """One real guest, booted with the client, shared by the lifecycle tests in order."""
    name = unique("vm")
    created = os_cli(qc.env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--no-network", name)
    _wait(qc, created["id"], "ACTIVE")
    _wait_ready(qc, created["id"])
    return created["id"]


def test_hypervisor_shows_this_hosts_qemu(qc, host):
    hv = os_cli(qc.env, "hypervisor", "show", host)
    assert hv["hypervisor_type"] in ("QEMU", "KVM"), hv
    assert hv["hypervisor_version"] >= 7_000_000, hv
    _, body = _nova(qc, "GET", "os-hypervisors/detail", mv="2.87")
    h = body["hypervisors"][0]
    # The host's real resources, as /proc says.
    assert h["vcpus"] == os.cpu_count(), h
    assert h["memory_mb"] > 1024, h
    assert h["local_gb"] > 0, h


def test_a_server_boots_a_real_guest(qc, host, vm):
    log = _console(qc, vm)
    assert "testvm ready" in log, log[-2000:]
    assert len(_qemu_pids(vm)) == 1
    assert (_host_dirs(qc, host) / "instances" / vm / "disk.qcow2").is_file()
    # The image was downloaded once into the host's cache, checked, and shared.
    cached = list((_host_dirs(qc, host) / "images").iterdir())
    assert cached and not [p for p in cached if p.name.endswith(".part")], cached
    s = _server(qc, vm)
    assert s["OS-EXT-STS:power_state"] == 1
    assert s["OS-EXT-SRV-ATTR:host"] == host
    # Diagnostics measured on the host: the vCPU's time, resident guest memory, disk counters.
    status, d = _nova(qc, "GET", f"servers/{vm}/diagnostics", mv="2.48")
    assert status == 200, d
    assert d["cpu_details"][0]["time"] > 0, d
    assert 0 < d["memory_details"]["used"] <= d["memory_details"]["maximum"], d
    assert d["disk_details"] and d["hypervisor"] in ("qemu", "kvm"), d


def test_stop_start_and_reboots(qc, vm):
    _action(qc, vm, {"os-stop": None})
    s = _wait(qc, vm, "SHUTOFF")
    assert s["OS-EXT-STS:power_state"] == 4
    assert _qemu_pids(vm) == []
    _action(qc, vm, {"os-start": None})
    _wait(qc, vm, "ACTIVE")
    _wait_ready(qc, vm, 2)
    os_cli(qc.env, "server", "reboot", "--hard", vm, json_output=False)
    _wait(qc, vm, "ACTIVE")
    _wait_ready(qc, vm, 3)
    os_cli(qc.env, "server", "reboot", vm, json_output=False)
    _wait(qc, vm, "ACTIVE")
    _wait_ready(qc, vm, 4)


def test_pause_and_suspend(qc, host, vm):
    pid = _qemu_pids(vm)
    os_cli(qc.env, "server", "pause", vm, json_output=False)
    s = _wait(qc, vm, "PAUSED")
    assert s["OS-EXT-STS:power_state"] == 3
    os_cli(qc.env, "server", "unpause", vm, json_output=False)
    _wait(qc, vm, "ACTIVE")
    assert _qemu_pids(vm) == pid, "pause keeps the same QEMU"
    boots = _boots(qc, vm)
    # Suspend: the memory goes to disk and QEMU ends; resume restores it (no new boot).
    os_cli(qc.env, "server", "suspend", vm, json_output=False)
    s = _wait(qc, vm, "SUSPENDED")
    assert s["OS-EXT-STS:power_state"] == 7
    assert _qemu_pids(vm) == []
    assert (_host_dirs(qc, host) / "instances" / vm / "suspend.state").is_file()
    os_cli(qc.env, "server", "resume", vm, json_output=False)
    _wait(qc, vm, "ACTIVE")
    assert len(_qemu_pids(vm)) == 1
    assert _boots(qc, vm) == boots
    assert not (_host_dirs(qc, host) / "instances" / vm / "suspend.state").exists()


def test_rescue_and_unrescue(qc, vm):
    boots = _boots(qc, vm)
    os_cli(qc.env, "server", "rescue", vm, json_output=False)
    _wait(qc, vm, "RESCUE")
    _wait_ready(qc, vm, boots + 1)
    cmd = _cmdline(vm)
    assert "rescue-disk.qcow2" in cmd and "/disk.qcow2" in cmd, cmd
    os_cli(qc.env, "server", "unrescue", vm, json_output=False)
    _wait(qc, vm, "ACTIVE")
    _wait_ready(qc, vm, boots + 2)
    cmd = _cmdline(vm)
    assert "rescue-disk.qcow2" not in cmd, cmd


def test_a_qemu_that_dies_shows_shutoff_and_starts_again(qc, vm):
    for pid in _qemu_pids(vm):
        os.kill(pid, signal.SIGKILL)
    s = _wait(qc, vm, "SHUTOFF")
    assert s["OS-EXT-STS:power_state"] == 4
    _action(qc, vm, {"os-start": None})
    _wait(qc, vm, "ACTIVE")
    assert len(_qemu_pids(vm)) == 1


def test_guests_survive_the_cloud_being_killed_and_are_adopted(qc, vm):
    pid = _qemu_pids(vm)
    assert len(pid) == 1
    qc.proc.send_signal(signal.SIGKILL)
    qc.proc.wait()
    qc.proc = None
    assert _qemu_pids(vm) == pid, "a guest outlives its agent"
    qc.start(timeout=60)
    s = _wait(qc, vm, "ACTIVE")
    assert s["OS-EXT-STS:power_state"] == 1
    # Adopted, not restarted.
    time.sleep(2)
    assert _qemu_pids(vm) == pid


def test_resize_revert_and_confirm(qc, host, vm):
    disk = _host_dirs(qc, host) / "instances" / vm / "disk.qcow2"

    def virtual_size() -> int:
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)], capture_output=True, text=True)
        return json.loads(out.stdout)["virtual-size"]

    assert virtual_size() == 1 << 30
    os_cli(qc.env, "server", "resize", "--flavor", "m1.small", vm, json_output=False)
    s = _wait(qc, vm, "VERIFY_RESIZE")
    assert s["flavor"]["original_name"] == "m1.small"
    guest = _host_dirs(qc, host) / "instances" / vm
    assert virtual_size() == 20 << 30, sorted(p.name for p in guest.iterdir())
    cmd = _cmdline(vm)
    assert "2048M" in cmd, cmd
    os_cli(qc.env, "server", "resize", "revert", vm, json_output=False)
    s = _wait(qc, vm, "ACTIVE")
    assert s["flavor"]["original_name"] == "m1.tiny"
    assert virtual_size() == 1 << 30, "revert restores the disk from before the resize"
    os_cli(qc.env, "server", "resize", "--flavor", "m1.small", vm, json_output=False)
    _wait(qc, vm, "VERIFY_RESIZE")
    os_cli(qc.env, "server", "resize", "confirm", vm, json_output=False)
    s = _wait(qc, vm, "ACTIVE")
    assert s["flavor"]["original_name"] == "m1.small"
    assert virtual_size() == 20 << 30
    _wait_ready(qc, vm, 1)


def _wait_image(cloud, image_id) -> dict:
    deadline = time.monotonic() + BOOT_DEADLINE
    while True:
        img = os_cli(cloud.env, "image", "show", image_id)
        if img["status"] == "active":
            return img
        assert img["status"] in ("queued", "saving"), img
        assert time.monotonic() < deadline, img
        time.sleep(1)


def test_a_snapshot_of_a_running_guest_boots(qc, vm):
    name = unique("snap")
    os_cli(qc.env, "server", "image", "create", "--name", name, vm)
    image = _wait_image(qc, name)
    assert image["disk_format"] == "qcow2"
    assert _server(qc, vm)["status"] == "ACTIVE", "the guest kept running"
    created = os_cli(qc.env, "server", "create", "--image", image["id"], "--flavor", "m1.small", "--no-network", unique("from-snap"))
    _wait(qc, created["id"], "ACTIVE")
    _wait_ready(qc, created["id"])
    os_cli(qc.env, "server", "delete", created["id"], json_output=False)
    _wait_gone(qc, created["id"])


def test_shelve_frees_the_host_and_unshelve_boots_it_again(qc, host, vm):
    os_cli(qc.env, "server", "shelve", vm, json_output=False)
    _wait(qc, vm, "SHELVED_OFFLOADED")
    assert _qemu_pids(vm) == []
    assert not (_host_dirs(qc, host) / "instances" / vm).exists()
    os_cli(qc.env, "server", "unshelve", vm, json_output=False)
    _wait(qc, vm, "ACTIVE")
    _wait_ready(qc, vm, 1)


def test_browser_and_serial_consoles(qc, vm):
    """noVNC's page, the RFB banner through the proxy's websocket, single-use tokens, and a
    login prompt over the serial websocket."""
    url = os_cli(qc.env, "console", "url", "show", "--novnc", vm)["url"]
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "noVNC" in page, page[:500]
    path = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["path"][0]
    ws_url = f"ws://127.0.0.1:{qc.port}/{path}"
    ws = websocket.create_connection(ws_url, subprotocols=["binary"], timeout=10)
    assert ws.recv().startswith(b"RFB 003.0"), "the guest's VNC server answers"
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as used:
        websocket.create_connection(ws_url, subprotocols=["binary"], timeout=10)
    assert used.value.status_code == 401, "a console token opens one connection"

    serial = os_cli(qc.env, "console", "url", "show", "--serial", vm)["url"]
    assert serial.startswith("ws://"), serial
    assert b"login:" in _serial_prompt(serial, within=60)


def _serial_prompt(url: str, within: float) -> bytes:
    """What the serial console websocket at ``url`` shows until the guest's login prompt
    (asked for with newlines), which must come ``within`` seconds."""
    ws = websocket.create_connection(url, timeout=5)
    seen = b""
    deadline = time.monotonic() + within
    try:
        while b"login:" not in seen:
            assert time.monotonic() < deadline, seen[-500:]
            ws.send_binary(b"\n")
            try:
                seen += ws.recv()
            except websocket.WebSocketTimeoutException:
                pass
    finally:
        ws.close()
    return seen


def test_novnc_shows_the_guest_screen_in_a_headless_browser(qc, vm):
    """What a user gets opening the URL: noVNC's own scripts connect through the proxy and
    draw the guest's screen on their canvas."""
    url = os_cli(qc.env, "console", "url", "show", "--novnc", vm)["url"]
    with Browser() as b:
        b.open(url)
        status = b.wait_for(
            "(e => e && e.textContent.startsWith('Connected') && e.textContent)"
            "(document.getElementById('status'))"
        )
        assert "QEMU" in status, status
        # The guest's screen on the canvas: its text on the background, not one flat colour.
        colours = b.wait_for(
            """(() => {
                const c = document.querySelector('#screen canvas');
                if (!c || !c.width) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const seen = new Set();
                for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                return seen.size > 1 ? seen.size : 0;
            })()"""
        )
        assert colours > 1


def test_delete_leaves_nothing(qc, host, vm):
    os_cli(qc.env, "server", "delete", vm, json_output=False)
    _wait_gone(qc, vm)
    assert _qemu_pids(vm) == []
    assert not (_host_dirs(qc, host) / "instances" / vm).exists()
    assert not (qc.run_dir / host / vm).exists()


def test_a_config_drive_gives_the_guest_its_identity_and_key(qc, host, tmp_path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kp = unique("kp")
    os_cli(qc.env, "keypair", "create", "--public-key", f"{key}.pub", kp)
    created = os_cli(
        qc.env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--no-network",
        "--config-drive", "True", "--key-name", kp, unique("cd"),
    )
    sid = created["id"]
    s = _wait(qc, sid, "ACTIVE")
    assert s["config_drive"] == "True"
    assert (_host_dirs(qc, host) / "instances" / sid / "disk.config").is_file()
    log = _wait_ready(qc, sid)
    ready = next(line for line in log.splitlines() if line.startswith("testvm ready"))
    assert f"instance_id={sid}" in ready, ready
    assert f"hostname={s['OS-EXT-SRV-ATTR:hostname']}" in ready, ready
    assert "1 public key(s) installed" in log, log[-2000:]
    os_cli(qc.env, "server", "delete", sid, json_output=False)
    _wait_gone(qc, sid)
    assert not (_host_dirs(qc, host) / "instances" / sid).exists()


def test_a_flavor_with_ephemeral_and_swap_gives_the_guest_those_disks(qc, host):
    flavor = unique("eph")
    os_cli(qc.env, "flavor", "create", "--ram", "256", "--disk", "1", "--ephemeral", "1", "--swap", "64", "--vcpus", "1", flavor)
    created = os_cli(qc.env, "server", "create", "--image", "testvm", "--flavor", flavor, "--no-network", unique("eph"))
    sid = created["id"]
    _wait(qc, sid, "ACTIVE")
    guest = _host_dirs(qc, host) / "instances" / sid
    cmd = _cmdline(sid)
    # Root, ephemeral and swap disks, in Nova's order (vda, vdb, vdc).
    disks = [a.split(",")[0].removeprefix("file=") for a in cmd.split() if a.startswith("file=")]
    assert [Path(d).name for d in disks][:3] == ["disk.qcow2", "disk.eph0.qcow2", "disk.swap.qcow2"], cmd

    def virtual_size(name: str) -> int:
        out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(guest / name)], capture_output=True, text=True)
        return json.loads(out.stdout)["virtual-size"]

    assert virtual_size("disk.eph0.qcow2") == 1 << 30
    assert virtual_size("disk.swap.qcow2") == 64 << 20
    _wait_ready(qc, sid)
    os_cli(qc.env, "server", "delete", sid, json_output=False)
    _wait_gone(qc, sid)
    assert not guest.exists()
    os_cli(qc.env, "flavor", "delete", flavor, json_output=False)


def _image_id(cloud, name: str) -> str:
    return os_cli(cloud.env, "image", "show", name)["id"]


def test_personality_files_and_the_admin_password_reach_the_guest(qc, host):
    """Before 2.57 a server takes personality files; its admin password and those files reach
    the guest on its config drive (Nova's layout), where the testvm writes the files and
    sets root's password to it; the host keeps neither beside the guest's spec."""
    password = "Adm1n-" + unique("pw")[-8:]
    # Over the API: OSC 10.5's `server create --file` hands the SDK an open file, which it
    # cannot encode ("Object of type BufferedReader is not JSON serializable").
    status, body = _nova(
        qc, "POST", "servers", mv="2.56",
        body={"server": {
            "name": unique("pers"), "imageRef": _image_id(qc, "testvm"), "flavorRef": "1",
            "networks": "none", "config_drive": True, "adminPass": password,
            "personality": [{"path": "/etc/motd-injected",
                             "contents": base64.b64encode(b"injected by personality\n").decode()}],
        }},
    )
    assert status == 202, body
    created = body["server"]
    sid = created["id"]
    assert created["adminPass"] == password
    _wait(qc, sid, "ACTIVE")
    log = _wait_ready(qc, sid)
    assert "personality file /etc/motd-injected" in log, log[-2000:]
    assert "admin password set for root" in log, log[-2000:]
    assert password not in log
    out = _serial_run(qc, sid, "cat /etc/motd-injected; id -u", user="root", password=password)
    assert "injected by personality" in out, out
    spec = (_host_dirs(qc, host) / "instances" / sid / "spec.json").read_text()
    assert password not in spec and "injected" not in spec, spec
    os_cli(qc.env, "server", "delete", sid, json_output=False)
    _wait_gone(qc, sid)
