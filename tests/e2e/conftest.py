"""End-to-end fixtures: the real ferrostack binary driven by the real ``openstack`` client.

The session fixture ``cloud`` starts ``$FERROSTACK_BIN all-in-one`` on a free port with a
temporary data directory, waits for the identity API, reads the admin credentials from
``<data-dir>/openrc`` and stops the process at the end of the session.

Tests drive the cloud with :func:`os_cli` (a subprocess running ``openstack ... -f json``).
Fixture set-up that is not itself under test (creating a user to then test RBAC with, ...)
may use the raw HTTP helpers of :class:`Cloud`, which are much faster than spawning the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CLI_TIMEOUT = 60
# How many openstack commands in_parallel runs at once.
PARALLEL = int(os.environ.get("FERROSTACK_E2E_PARALLEL", "3"))
# Leading words of the openstack commands that accept `-f json`.
_JSON_VERBS = {"create", "list", "show", "issue"}


# --------------------------------------------------------------------------------------------
# The openstack CLI


@dataclass
class CliResult:
    args: list
    returncode: int
    stdout: str
    stderr: str
    data: object = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class CliError(AssertionError):
    def __init__(self, result: CliResult):
        self.result = result
        super().__init__(
            f"openstack {shlex.join(result.args)} exited {result.returncode}\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}"
        )


def _wants_json(args) -> bool:
    words = []
    for a in args:
        if a.startswith("-"):
            break
        words.append(a)
    # The verb is among the first words of the command (`project create`, `implied role list`,
    # `application credential create`, `role assignment list`).
    return any(w in _JSON_VERBS for w in words[:3])


def os_cli(env: dict, *args, check: bool = True, json_output: bool | None = None):
    """Runs ``openstack <args> [-f json]`` with ``env``.

    With ``check`` (default) a non-zero exit raises :class:`CliError` (an AssertionError that
    carries stdout and stderr) and the parsed JSON (or the stripped stdout when the command
    prints no JSON) is returned. With ``check=False`` a :class:`CliResult` is returned.
    """
    args = [str(a) for a in args]
    if json_output is None:
        json_output = _wants_json(args)
    cmd = ["openstack", *args] + (["-f", "json"] if json_output else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    res = CliResult(args=args, returncode=p.returncode, stdout=p.stdout, stderr=p.stderr)
    if p.returncode == 0:
        if json_output and p.stdout.strip():
            try:
                res.data = json.loads(p.stdout)
            except json.JSONDecodeError as e:
                raise AssertionError(f"openstack {shlex.join(args)} printed no JSON: {p.stdout!r}") from e
        else:
            res.data = p.stdout.strip()
    if check:
        if not res.ok:
            raise CliError(res)
        return res.data
    return res


def cli_fails(env: dict, *args, status: int | None = None) -> CliResult:
    """Runs the command, asserts that it fails (with HTTP ``status`` in the error, when given)
    and returns the result."""
    res = os_cli(env, *args, check=False)
    assert not res.ok, f"openstack {shlex.join(res.args)} unexpectedly succeeded: {res.stdout}"
    if status is not None:
        # keystoneclient says "... (HTTP 403) (Request-ID: ...)", openstacksdk
        # "ForbiddenException: 403: Client Error for url: ...".
        assert re.search(rf"\(HTTP {status}\)|\b{status}: Client Error", res.stderr), (
            f"expected HTTP {status} in the error of openstack {shlex.join(res.args)}:\n{res.stderr}"
        )
    return res


def in_parallel(*calls):
    """Runs independent checks (zero-argument callables, typically lambdas around os_cli or
    cli_fails) at the same time and returns their results in order; the first failure is
    raised. The client spends most of its time starting up, so this keeps the suite short."""
    with ThreadPoolExecutor(max_workers=min(len(calls), PARALLEL)) as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result() for f in futures]


# --------------------------------------------------------------------------------------------
# Environments


_AUTH_VARS = (
    "OS_AUTH_TYPE",
    "OS_USERNAME",
    "OS_USER_ID",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "OS_PROJECT_ID",
    "OS_TENANT_NAME",
    "OS_TENANT_ID",
    "OS_USER_DOMAIN_NAME",
    "OS_USER_DOMAIN_ID",
    "OS_PROJECT_DOMAIN_NAME",
    "OS_PROJECT_DOMAIN_ID",
    "OS_DOMAIN_NAME",
    "OS_DOMAIN_ID",
    "OS_SYSTEM_SCOPE",
    "OS_TOKEN",
    "OS_APPLICATION_CREDENTIAL_ID",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_APPLICATION_CREDENTIAL_NAME",
)


def _base(env: dict) -> dict:
    out = {k: v for k, v in env.items() if k not in _AUTH_VARS}
    return out


def user_env(
    env: dict,
    username: str,
    password: str,
    project: str | None = None,
    domain: str | None = None,
    user_domain: str = "Default",
    project_domain: str = "Default",
) -> dict:
    """``env`` re-targeted at another user: project scope with ``project`` (a name in
    ``project_domain``), domain scope with ``domain`` (a domain name), else unscoped."""
    out = _base(env)
    out.update(OS_AUTH_TYPE="password", OS_USERNAME=username, OS_PASSWORD=password, OS_USER_DOMAIN_NAME=user_domain)
    if project is not None:
        out.update(OS_PROJECT_NAME=project, OS_PROJECT_DOMAIN_NAME=project_domain)
    elif domain is not None:
        out["OS_DOMAIN_NAME"] = domain
    return out


def app_cred_env(env: dict, cred_id: str, secret: str) -> dict:
    out = _base(env)
    out.update(
        OS_AUTH_TYPE="v3applicationcredential",
        OS_APPLICATION_CREDENTIAL_ID=cred_id,
        OS_APPLICATION_CREDENTIAL_SECRET=secret,
    )
    return out


def token_env(env: dict, token: str, project_id: str | None = None) -> dict:
    out = _base(env)
    out.update(OS_AUTH_TYPE="token", OS_TOKEN=token)
    if project_id:
        out["OS_PROJECT_ID"] = project_id
    return out


def unique(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def parse_openrc(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        key, _, value = line[len("export ") :].partition("=")
        parts = shlex.split(value)
        env[key.strip()] = parts[0] if parts else ""
    return env


# --------------------------------------------------------------------------------------------
# The cloud process


class HttpError(AssertionError):
    def __init__(self, method, url, status, body):
        self.status = status
        self.body = body
        super().__init__(f"{method} {url} -> {status}: {body}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cloud:
    """A running ferrostack all-in-one (or ``command``) process."""

    data_dir: Path
    port: int
    proc: subprocess.Popen | None = None
    # The subcommand and its extra options (``controller``, ``--service-down-time 15``, ...).
    command: str = "all-in-one"
    extra_args: list = field(default_factory=list)
    # The umask the process starts with (None: the test runner's).
    umask: int | None = None
    env: dict = field(default_factory=dict)
    binary: str | None = None
    _admin_token: str | None = None
    _admin_project_id: str | None = None
    _role_ids: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "ferrostack.log"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 30.0) -> None:
        # A restarted cloud runs the binary (or wrapper) it first started with.
        binary = self.binary or os.environ.get("FERROSTACK_BIN")
        if not binary:
            pytest.exit("FERROSTACK_BIN must point at the ferrostack binary", returncode=2)
        self.binary = binary
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                binary,
                self.command,
                "--data-dir",
                str(self.data_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: os.umask(self.umask)) if self.umask is not None else None,
            # FERROSTACK_TESTVM_DIR tells the tests where the prebuilt testvm is; the clouds
            # themselves start without it (a test that wants testvm passes --testvm-dir).
            # Hosts are simulated (fake driver) unless a test asks for --compute-driver qemu.
            env={
                **{k: v for k, v in os.environ.items() if k != "FERROSTACK_TESTVM_DIR"},
                "FERROSTACK_COMPUTE_DRIVER": os.environ.get("FERROSTACK_COMPUTE_DRIVER", "fake"),
                "NO_COLOR": "1",
            },
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ferrostack exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/identity/v3", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"ferrostack did not answer within {timeout}s:\n{self.log_tail()}")
        openrc = parse_openrc(self.data_dir / "openrc")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(openrc)
        self.env = env
        self._admin_token = None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    # ---- raw HTTP, for set-up that is not under test

    def http(self, method: str, path: str, body=None, token: str | None = None, headers=None, expect=None):
        """``method`` ``/identity/v3/<path>``; returns (status, parsed body or None, headers).
        With ``expect`` (a status or tuple), another status raises HttpError."""
        url = path if path.startswith("http") else f"{self.url}/identity/v3/{path.lstrip('/')}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        tok = token if token is not None else self.admin_token
        if tok:
            req.add_header("X-Auth-Token", tok)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, raw, hdrs = e.code, e.read(), e.headers
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError:
                parsed = raw.decode(errors="replace")
        if expect is not None:
            ok = status in expect if isinstance(expect, tuple) else status == expect
            if not ok:
                raise HttpError(method, url, status, parsed)
        return status, parsed, hdrs

    def get(self, path: str, token: str | None = None):
        """GET ``/identity/v3/<path>`` as the admin (or ``token``): the body, or None on 404."""
        status, body, _ = self.http("GET", path, token=token, expect=(200, 404))
        return body if status == 200 else None

    def password_token(self, username, password, project=None, domain=None, user_domain_id="default"):
        """Issues a token over HTTP; returns (token, body)."""
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "domain": {"id": user_domain_id}, "password": password}},
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"id": project}}
        elif domain is not None:
            auth["scope"] = {"domain": {"id": domain}}
        _, body, hdrs = self.http("POST", "auth/tokens", {"auth": auth}, token="", expect=201)
        return hdrs["X-Subject-Token"], body

    @property
    def admin_token(self) -> str:
        """A project-scoped token of the bootstrap admin (issued over HTTP, cached)."""
        if self._admin_token is None:
            auth = {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.env["OS_USERNAME"],
                            "domain": {"name": self.env["OS_USER_DOMAIN_NAME"]},
                            "password": self.env["OS_PASSWORD"],
                        }
                    },
                },
                "scope": {"project": {"name": self.env["OS_PROJECT_NAME"], "domain": {"name": "Default"}}},
            }
            _, body, hdrs = self.http("POST", "auth/tokens", {"auth": auth}, token="", expect=201)
            self._admin_token = hdrs["X-Subject-Token"]
            self._admin_project_id = body["token"]["project"]["id"]
        return self._admin_token

    @property
    def admin_project_id(self) -> str:
        self.admin_token
        return self._admin_project_id

    def role_id(self, name: str) -> str:
        if name not in self._role_ids:
            _, body, _ = self.http("GET", f"roles?name={name}", expect=200)
            assert body["roles"], f"no role named {name}"
            self._role_ids[name] = body["roles"][0]["id"]
        return self._role_ids[name]

    def create_domain(self, name=None) -> dict:
        _, b, _ = self.http("POST", "domains", {"domain": {"name": name or unique("dom")}}, expect=201)
        return b["domain"]

    def create_project(self, name=None, domain_id="default") -> dict:
        _, b, _ = self.http(
            "POST", "projects", {"project": {"name": name or unique("proj"), "domain_id": domain_id}}, expect=201
        )
        return b["project"]

    def create_user(self, name=None, password=None, domain_id="default", **extra) -> dict:
        body = {"name": name or unique("user"), "domain_id": domain_id, "password": password or uuid.uuid4().hex}
        body.update(extra)
        _, b, _ = self.http("POST", "users", {"user": body}, expect=201)
        user = b["user"]
        user["password"] = body["password"]
        return user

    def create_role(self, name=None) -> dict:
        _, b, _ = self.http("POST", "roles", {"role": {"name": name or unique("role")}}, expect=201)
        return b["role"]

    def grant(self, role: str, user_id: str, project_id: str | None = None, domain_id: str | None = None):
        target = f"projects/{project_id}" if project_id else f"domains/{domain_id}"
        self.http("PUT", f"{target}/users/{user_id}/roles/{self.role_id(role)}", expect=204)

    def user_with_role(self, role: str, domain_id: str = "default", on_domain: bool = False):
        """A new user with ``role`` on a new project of ``domain_id`` (or on the domain).
        Returns (user, project-or-None)."""
        user = self.create_user(domain_id=domain_id)
        if on_domain:
            self.grant(role, user["id"], domain_id=domain_id)
            return user, None
        project = self.create_project(domain_id=domain_id)
        self.grant(role, user["id"], project_id=project["id"])
        return user, project


# Every cloud started in this session, for the log tails of failed tests.
_CLOUDS: list = []


def remove_namespaces(data_dir: Path) -> None:
    """Deletes the network namespaces of the cloud that ran in `data_dir` (its outside
    world and its hosts' data planes, all named after the prefix in `external-netns`), once
    the cloud is gone for good; a restarted cloud keeps them, as guests' traffic does."""
    try:
        outside = (Path(data_dir) / "external-netns").read_text().strip()
    except OSError:
        return
    prefix = outside[: -len("-ext")] if outside.endswith("-ext") else outside
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if name == outside or name.startswith((prefix + "-dp-", prefix + "-dhcp-", prefix + "-router-")):
            # Daemons in it (dnsmasq) would keep it alive: they end first.
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", pid], capture_output=True)
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    shutil.rmtree(f"/run/ferrostack/net/{prefix}", ignore_errors=True)


def start_cloud(data_dir: Path, command: str = "all-in-one", extra_args=()) -> Cloud:
    c = Cloud(data_dir=data_dir, port=free_port(), command=command, extra_args=list(extra_args))
    _CLOUDS.append(c)
    c.start()
    return c


@pytest.fixture(scope="session")
def cloud_factory():
    """Starts extra clouds (each in its own data dir); stops them at the end of the session."""
    started = []
    root = Path(tempfile.mkdtemp(prefix="ferrostack-e2e-extra-"))

    def make(name: str) -> Cloud:
        c = start_cloud(root / name)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()
        remove_namespaces(c.data_dir)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cloud():
    if shutil.which("openstack") is None:
        pytest.exit("the openstack client is not on PATH", returncode=2)
    data_dir = Path(tempfile.mkdtemp(prefix="ferrostack-e2e-"))
    c = start_cloud(data_dir)
    yield c
    rc = c.stop()
    remove_namespaces(data_dir)
    failed = getattr(c, "_failed", False)
    # Keep the data dir (and its log) when something failed, the process died badly, or
    # FERROSTACK_E2E_KEEP is set.
    if rc not in (0, -signal.SIGTERM) or failed or os.environ.get("FERROSTACK_E2E_KEEP"):
        print(f"\nferrostack exited with {rc}; data dir kept at {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def admin_env(cloud) -> dict:
    return dict(cloud.env)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for c in _CLOUDS:
            c._failed = True
            rep.sections.append((f"ferrostack log of {c.data_dir} (tail)", c.log_tail()))
