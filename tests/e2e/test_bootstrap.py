"""First start and restart on the same data directory: bootstrap is idempotent."""

import stat
from collections import Counter

from conftest import free_port, in_parallel, os_cli, parse_openrc


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_restart_keeps_admin_and_creates_nothing_twice(cloud_factory):
    c = cloud_factory("bootstrap")
    openrc = c.data_dir / "openrc"
    assert _mode(openrc) == 0o600
    first = parse_openrc(openrc)
    assert first["OS_USERNAME"] == "admin" and first["OS_PROJECT_NAME"] == "admin"
    assert len(first["OS_PASSWORD"]) >= 16

    tok, roles = in_parallel(lambda: os_cli(c.env, "token", "issue"), lambda: os_cli(c.env, "role", "list"))
    roles_before = sorted(r["Name"] for r in roles)
    assert Counter(roles_before)["admin"] == 1

    assert c.stop() in (0, -15), c.log_tail()
    c.port = free_port()  # a new port: the openrc must follow it
    c.start()

    again = parse_openrc(openrc)
    assert _mode(openrc) == 0o600
    assert again["OS_PASSWORD"] == first["OS_PASSWORD"], "the admin password must not change"
    assert again["OS_AUTH_URL"] == f"{c.url}/identity"

    # The same admin password works against the restarted cloud.
    tok2, projects, roles = in_parallel(
        lambda: os_cli(c.env, "token", "issue"),
        lambda: os_cli(c.env, "project", "list"),
        lambda: os_cli(c.env, "role", "list"),
    )
    assert tok2["user_id"] == tok["user_id"]
    projects = Counter(p["Name"] for p in projects)
    assert projects["admin"] == 1 and projects["service"] == 1, projects
    roles_after = [r["Name"] for r in roles]
    dups = [n for n, k in Counter(roles_after).items() if k > 1]
    assert not dups, f"duplicate roles after restart: {dups}"
    assert sorted(roles_after) == roles_before
    assert {"admin", "manager", "member", "reader", "service"} <= set(roles_after)

    # Tokens survive the restart (the Fernet keys are in the data dir), and nothing else was
    # duplicated: one admin user, one identity service with three endpoints.
    status, _, _ = c.http("GET", "auth/tokens", headers={"X-Subject-Token": tok["id"]})
    assert status == 200
    _, users, _ = c.http("GET", "users?name=admin")
    assert len(users["users"]) == 1
    _, services, _ = c.http("GET", "services?type=identity")
    assert len(services["services"]) == 1
    _, endpoints, _ = c.http("GET", f"endpoints?service_id={services['services'][0]['id']}")
    assert sorted(e["interface"] for e in endpoints["endpoints"]) == ["admin", "internal", "public"]
    _, rules, _ = c.http("GET", "role_inferences")
    pairs = [(r["prior_role"]["name"], i["name"]) for r in rules["role_inferences"] for i in r["implies"]]
    assert len(pairs) == len(set(pairs)), pairs
