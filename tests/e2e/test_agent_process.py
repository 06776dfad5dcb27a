"""Multi-node shape on one machine: ``ferrostack controller`` (APIs and scheduler, no local
agent) plus a separate ``ferrostack agent`` process that dials it over HTTP with the admin's
openrc credentials. The host shows up as a hypervisor and an up compute service, a server
boots on it, the service goes down when the agent is killed, and a restarted agent picks its
server up again. A QEMU agent process carries its guest's consoles to the controller's proxy
by dialing back (the controller never connects to an agent)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
import websocket

from conftest import _CLOUDS, in_parallel, os_cli, remove_namespaces, start_cloud, unique
from test_compute import _nova
from test_qemu import TESTVM_DIR, _qemu_pids, _serial_prompt

HOST = "e2e-agent-1"
# Agents heartbeat every 10 s; a short down time makes a dead agent visible quickly.
DOWN_TIME = 15


class AgentProcess:
    def __init__(self, cloud, host: str, *driver_args: str):
        self.cloud = cloud
        self.host = host
        self.log_path = cloud.data_dir / f"agent-{host}.log"
        self.proc: subprocess.Popen | None = None
        self.driver_args = list(driver_args) or ["--compute-driver", "fake"]

    def start(self):
        log = open(self.log_path, "ab")
        env = {**self.cloud.env, "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [os.environ["FERROSTACK_BIN"], "agent", "--controller", self.cloud.url, "--host", self.host,
             *self.driver_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def controller():
    if not all((TESTVM_DIR / f).is_file() for f in ("testvm-kernel", "testvm-ramdisk", "testvm.qcow2")):
        pytest.skip(f"no prebuilt testvm in {TESTVM_DIR}")
    data_dir = Path(tempfile.mkdtemp(prefix="ferrostack-e2e-ctl-"))
    c = start_cloud(
        data_dir,
        command="controller",
        extra_args=["--service-down-time", str(DOWN_TIME), "--testvm-dir", str(TESTVM_DIR)],
    )
    yield c
    rc = c.stop()
    _CLOUDS.remove(c)
    remove_namespaces(data_dir)
    if rc in (0, -signal.SIGTERM) and not getattr(c, "_failed", False):
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"\nferrostack controller exited with {rc}; data dir kept at {data_dir}")


def _service_state(env, host: str = HOST) -> str | None:
    rows = os_cli(env, "compute", "service", "list", "--service", "nova-compute")
    states = [r["State"] for r in rows if r["Host"] == host]
    return states[0] if states else None


def _eventually(what: str, check, timeout: float, agent: AgentProcess | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    log = agent.log_path.read_text(errors="replace")[-3000:] if agent else ""
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})\n{log}")


def test_agent_process_runs_servers_and_reports_liveness(controller, tmp_path):
    env = dict(controller.env)
    # A controller runs no agent of its own: no compute service before ours starts.
    assert _service_state(env) is None

    agent = AgentProcess(controller, HOST)
    agent.start()
    try:
        _eventually("the agent's service up", lambda: _service_state(env) == "up", 30, agent)
        image_file = tmp_path / "tiny.raw"
        image_file.write_bytes(b"\0" * (1 << 20))
        hypervisors, image = in_parallel(
            lambda: os_cli(env, "hypervisor", "list"),
            lambda: os_cli(
                env,
                "image", "create", "--disk-format", "raw", "--container-format", "bare",
                "--file", str(image_file), "--public", unique("img"),
            ),
        )
        assert HOST in {h["Hypervisor Hostname"] for h in hypervisors}

        name = unique("srv")
        server = os_cli(
            env, "server", "create", "--image", image["id"], "--flavor", "m1.tiny", "--nic", "none", "--wait", name
        )
        assert server["status"] == "ACTIVE"
        assert server["OS-EXT-SRV-ATTR:host"] == HOST
        # The console log comes from the agent process's driver (a question it answers).
        log = os_cli(env, "console", "log", "show", "--lines", "20", server["id"], json_output=False)
        assert "[fake]" in log, log

        # The agent dies without a word: its service goes down once heartbeats stop.
        agent.kill()
        _eventually("the service down", lambda: _service_state(env) == "down", DOWN_TIME + 45)
        # The server itself is untouched by the agent's absence.
        assert os_cli(env, "server", "show", server["id"])["status"] == "ACTIVE"

        # A new agent process for the same host converges again: its (fake, in-memory)
        # hypervisor starts the guest anew and the server stays ACTIVE and running.
        agent.start()
        _eventually("the service up again", lambda: _service_state(env) == "up", 30, agent)
        shown = os_cli(env, "server", "show", server["id"])
        assert shown["status"] == "ACTIVE"
        assert shown["OS-EXT-STS:power_state"] in ("Running", 1)

        os_cli(env, "server", "delete", "--wait", server["id"])
        rows = os_cli(env, "server", "list", "--name", name)
        assert rows == []
    finally:
        agent.stop()


def test_a_remote_qemu_agent_carries_its_guests_consoles(controller, tmp_path):
    """A guest on a QEMU host whose agent is another process: its serial console and its
    screen reach the user through the controller's proxy, the agent dialing back for each
    connection; its console log comes the same way (a question the agent answers)."""
    env = dict(controller.env)
    host = "e2e-qemu-agent"
    # Short: socket paths must stay within 107 bytes.
    run_dir = Path(tempfile.mkdtemp(prefix="fsrun-"))
    agent = AgentProcess(
        controller, host, "--compute-driver", "qemu", "--data-dir", str(tmp_path / "agent"),
        "--run-dir", str(run_dir), "--testvm-dir", str(TESTVM_DIR), "--shutdown-timeout", "30",
    )
    agent.start()
    try:
        _eventually("the QEMU agent's service up", lambda: _service_state(env, host) == "up", 60, agent)
        server = os_cli(
            env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--no-network",
            "--availability-zone", f"nova:{host}", "--wait", unique("remote"),
        )
        assert server["OS-EXT-SRV-ATTR:host"] == host
        sid = server["id"]
        _eventually(
            "testvm ready in the console log",
            lambda: "testvm ready" in os_cli(env, "console", "log", "show", sid, json_output=False),
            180,
            agent,
        )

        serial = os_cli(env, "console", "url", "show", "--serial", sid)["url"]
        assert b"login:" in _serial_prompt(serial, within=90)

        url = os_cli(env, "console", "url", "show", "--novnc", sid)["url"]
        path = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["path"][0]
        ws = websocket.create_connection(f"{controller.url.replace('http', 'ws', 1)}/{path}", subprotocols=["binary"], timeout=10)
        try:
            assert ws.recv().startswith(b"RFB 003.0"), "the guest's VNC server answers through the agent"
        finally:
            ws.close()
        assert "console carried to the controller" in agent.log_path.read_text(errors="replace")

        os_cli(env, "server", "delete", "--wait", sid)
        assert _qemu_pids(sid) == []
    finally:
        agent.stop()
        subprocess.run(["pkill", "-9", "-f", str(run_dir)], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
        for d in tmp_path.iterdir():
            remove_namespaces(d)


def test_a_server_is_evacuated_from_a_host_whose_agent_was_killed(controller, tmp_path):
    """Two QEMU agent processes; the agent of the server's host is killed (SIGKILL: its guest
    runs on, as a host that went dark would). Once the controller sees that host's service
    down, evacuation rebuilds the server on the other host; when the agent comes back it
    removes the copy it still ran, and the evacuation completes."""
    env = dict(controller.env)
    run_dir = Path(tempfile.mkdtemp(prefix="fsrun-"))
    agents = {
        host: AgentProcess(
            controller, host, "--compute-driver", "qemu", "--data-dir", str(tmp_path / host),
            "--run-dir", str(run_dir), "--testvm-dir", str(TESTVM_DIR), "--shutdown-timeout", "30",
        )
        for host in ("e2e-evac-a", "e2e-evac-b")
    }
    src, dst = agents
    for a in agents.values():
        a.start()

    def guest_dirs(sid: str, host: str) -> list[Path]:
        return list((tmp_path / host).glob(f"**/instances/{sid}"))

    def console(sid: str) -> str:
        return os_cli(env, "console", "log", "show", sid, json_output=False)

    try:
        for host, a in agents.items():
            _eventually(f"{host} up", lambda h=host: _service_state(env, h) == "up", 60, a)
        server = os_cli(
            env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny", "--no-network",
            "--availability-zone", f"nova:{src}", "--wait", unique("evac"),
        )
        sid = server["id"]
        assert server["OS-EXT-SRV-ATTR:host"] == src
        _eventually("testvm ready on the first host", lambda: "testvm ready" in console(sid), 180, agents[src])

        agents[src].kill()
        assert len(_qemu_pids(sid)) == 1, "the guest outlives its agent"
        _eventually("the killed agent's service down", lambda: _service_state(env, src) == "down", 60)
        os_cli(env, "--os-compute-api-version", "2.29", "server", "evacuate", sid)
        _eventually(
            "the server ACTIVE on the other host",
            lambda: (s := os_cli(env, "server", "show", sid))["status"] == "ACTIVE"
            and s["OS-EXT-SRV-ATTR:host"] == dst
            and s["OS-EXT-STS:task_state"] is None,
            120,
            agents[dst],
        )
        # Rebuilt from its image there: a boot of its own on the other host.
        _eventually("testvm ready on the other host", lambda: "testvm ready" in console(sid), 180, agents[dst])
        assert guest_dirs(sid, dst)

        # The first host comes back: its agent removes the stale copy (and its QEMU).
        agents[src].start()
        _eventually("the stale copy removed", lambda: not guest_dirs(sid, src), 60, agents[src])
        _eventually("one QEMU for the server", lambda: len(_qemu_pids(sid)) == 1, 30)
        def evacuation() -> dict:
            _, body = _nova(controller, "GET", f"os-migrations?instance_uuid={sid}", mv="2.80")
            return next(m for m in body["migrations"] if m["migration_type"] == "evacuation")

        _eventually("the evacuation completed", lambda: evacuation()["status"] == "completed", 30)

        os_cli(env, "server", "delete", "--wait", sid)
        assert _qemu_pids(sid) == []
        assert not guest_dirs(sid, dst)
    finally:
        for a in agents.values():
            a.stop()
        subprocess.run(["pkill", "-9", "-f", str(run_dir)], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
        for d in tmp_path.iterdir():
            remove_namespaces(d)


def _kill_host_dataplane(prefix: str, host: str) -> list[str]:
    """Does to `host`'s data plane what the host's death would: its namespaces (data plane,
    routers, DHCP servers) and their daemons are gone. Returns the namespaces removed."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.split()]
    mine = [n for n in names if n == f"{prefix}-dp-{host}"
            or n.startswith((f"{prefix}-router-{host}-", f"{prefix}-dhcp-{host}-"))]
    for name in mine:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split():
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return mine


def test_a_router_moves_to_a_live_host_when_its_agent_dies_and_traffic_comes_back(controller, tmp_path):
    """Two QEMU agent processes sharing one data plane prefix (two hosts of one cloud on one
    machine, VXLAN between them over loopback). The router runs on one host, the guest on the
    other; the outside pings the guest's floating IP. The router's host dies (its agent is
    killed and its namespaces vanish, as with a host that lost power): the floating IP goes
    dark, and once the controller sees the agent down the router is rebuilt on the live host
    and the floating IP answers again. The dead host's agent comes back without taking the
    router back."""
    env = dict(controller.env)
    run_dir = Path(tempfile.mkdtemp(prefix="fsrun-"))
    prefix = "fsfo" + os.urandom(2).hex()
    vxlan_port = 21000 + int.from_bytes(os.urandom(1), "big") * 16
    # The router goes to the live host with the fewest routers, the first by name on a tie.
    router_host, guest_host = "e2e-l3-a", "e2e-l3-b"
    agents = {
        host: AgentProcess(
            controller, host, "--compute-driver", "qemu", "--data-dir", str(tmp_path / host),
            "--run-dir", str(run_dir), "--testvm-dir", str(TESTVM_DIR), "--shutdown-timeout", "30",
            "--net-prefix", prefix, "--vxlan-port", str(vxlan_port + i),
        )
        for i, host in enumerate((router_host, guest_host))
    }

    def l3_alive() -> set[str]:
        rows = os_cli(env, "network", "agent", "list", "--agent-type", "l3")
        return {r["Host"] for r in rows if r["Alive"] in (True, ":-)")}

    def routers_of(host: str) -> list[str]:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in listed.splitlines()
                if line.startswith(f"{prefix}-router-{host}-")]

    def ping(address: str) -> bool:
        r = subprocess.run(["ip", "netns", "exec", f"{prefix}-ext", "ping", "-c", "1", "-W", "2", address],
                           capture_output=True, text=True, timeout=10)
        return r.returncode == 0

    made: list[tuple[str, ...]] = []
    try:
        # One after the other: both make the shared outside namespace.
        for host, a in agents.items():
            a.start()
            _eventually(f"{host}'s L3 agent alive", lambda h=host: h in l3_alive(), 60, a)

        net = os_cli(env, "network", "create", unique("ha"))
        made.append(("network", net["id"]))
        sub = os_cli(env, "subnet", "create", "--network", net["id"], "--subnet-range", "10.41.0.0/24",
                     unique("ha-v4"))
        router = os_cli(env, "router", "create", unique("ha-r"))
        made.append(("router", router["id"]))
        os_cli(env, "router", "set", "--external-gateway", "public", router["id"], json_output=False)
        os_cli(env, "router", "add", "subnet", router["id"], sub["id"], json_output=False)
        sg = os_cli(env, "security", "group", "create", unique("ping"))
        made.append(("security group", sg["id"]))
        os_cli(env, "security", "group", "rule", "create", "--protocol", "icmp", "--remote-ip", "0.0.0.0/0",
               sg["id"])
        server = os_cli(env, "server", "create", "--image", "testvm", "--flavor", "m1.tiny",
                        "--network", net["id"], "--security-group", sg["id"],
                        "--availability-zone", f"nova:{guest_host}", "--wait", unique("ha-vm"))
        sid = server["id"]
        made.insert(0, ("server", sid))
        assert server["OS-EXT-SRV-ATTR:host"] == guest_host
        fip = os_cli(env, "floating", "ip", "create", "public")
        made.insert(0, ("floating ip", fip["id"]))
        address = fip["floating_ip_address"]
        os_cli(env, "server", "add", "floating", "ip", sid, address, json_output=False)

        def l3_hosts() -> list[str]:
            return [r["Host"] for r in os_cli(env, "network", "agent", "list", "--router", router["id"])]

        assert l3_hosts() == [router_host]
        _eventually("the router's namespace on its host", lambda: routers_of(router_host), 60, agents[router_host])
        # The guest boots under TCG, slowly when the machine is busy: ready first.
        _eventually("testvm ready", lambda: "testvm ready" in os_cli(
            env, "console", "log", "show", sid, json_output=False), 300, agents[guest_host])
        _eventually("the floating IP answering through the router", lambda: ping(address), 240, agents[guest_host])

        # The router's host dies.
        agents[router_host].kill()
        assert _kill_host_dataplane(prefix, router_host)
        assert not ping(address), "the floating IP still answers with its router's host gone"

        # Once its agent has been silent for the down time, the router moves to the live host.
        _eventually("the router on the live host", lambda: l3_hosts() == [guest_host], DOWN_TIME + 60,
                    agents[guest_host])
        _eventually("the floating IP answering again", lambda: ping(address), 90, agents[guest_host])
        assert routers_of(guest_host) and not routers_of(router_host)

        # The dead host's agent comes back: the router stays where it is, the traffic too.
        agents[router_host].start()
        _eventually("the old host's L3 agent alive", lambda: router_host in l3_alive(), 60, agents[router_host])
        time.sleep(5)
        assert l3_hosts() == [guest_host]
        assert not routers_of(router_host)
        assert ping(address)
        ns = routers_of(guest_host)[0]

        os_cli(env, "server", "delete", "--wait", sid, json_output=False)
        os_cli(env, "floating", "ip", "delete", fip["id"], json_output=False)
        os_cli(env, "router", "remove", "subnet", router["id"], sub["id"], json_output=False)
        made.clear()
        os_cli(env, "router", "delete", router["id"], json_output=False)
        os_cli(env, "network", "delete", net["id"], json_output=False)
        os_cli(env, "security", "group", "delete", sg["id"], json_output=False)
        _eventually("the router's namespace gone", lambda: ns not in routers_of(guest_host), 60)
    finally:
        # A failed test's leftovers, in an order their deletes succeed (the router's
        # interface first).
        if any(kind == "router" for kind, _ in made):
            subprocess.run(["openstack", "router", "remove", "subnet", router["id"], sub["id"]],
                           env=env, capture_output=True)
        for kind, rid in made:
            subprocess.run(["openstack", *kind.split(), "delete", rid], env=env, capture_output=True)
        for a in agents.values():
            a.stop()
        subprocess.run(["pkill", "-9", "-f", str(run_dir)], check=False)
        shutil.rmtree(run_dir, ignore_errors=True)
        for d in tmp_path.iterdir():
            remove_namespaces(d)
