"""Multi-node shape on one machine: ``ferrostack controller`` (APIs and scheduler, no local
agent) plus a separate ``ferrostack agent`` process that dials it over HTTP with the admin's
openrc credentials. The host shows up as a hypervisor and an up compute service, a server
boots on it, the service goes down when the agent is killed, and a restarted agent picks its
server up again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import _CLOUDS, in_parallel, os_cli, start_cloud, unique

HOST = "e2e-agent-1"
# Agents heartbeat every 10 s; a short down time makes a dead agent visible quickly.
DOWN_TIME = 15


class AgentProcess:
    def __init__(self, cloud, host: str):
        self.cloud = cloud
        self.host = host
        self.log_path = cloud.data_dir / f"agent-{host}.log"
        self.proc: subprocess.Popen | None = None

    def start(self):
        log = open(self.log_path, "ab")
        env = {**self.cloud.env, "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [os.environ["FERROSTACK_BIN"], "agent", "--controller", self.cloud.url, "--host", self.host,
             "--compute-driver", "fake"],
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
    data_dir = Path(tempfile.mkdtemp(prefix="ferrostack-e2e-ctl-"))
    c = start_cloud(data_dir, command="controller", extra_args=["--service-down-time", str(DOWN_TIME)])
    yield c
    rc = c.stop()
    _CLOUDS.remove(c)
    if rc in (0, -signal.SIGTERM) and not getattr(c, "_failed", False):
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"\nferrostack controller exited with {rc}; data dir kept at {data_dir}")


def _service_state(env) -> str | None:
    rows = os_cli(env, "compute", "service", "list", "--service", "nova-compute")
    states = [r["State"] for r in rows if r["Host"] == HOST]
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
