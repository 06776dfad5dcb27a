"""Tokens: issue, revoke, refused credentials, disabled users, password change, catalog."""

import re

from conftest import cli_fails, in_parallel, os_cli, token_env, unique, user_env


def _error_line(stderr: str) -> str:
    """The client's error message without the request id (which differs on every call)."""
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    assert lines, "the client printed no error"
    return re.sub(r"\s*\(Request-ID: [^)]*\)", "", lines[-1]).strip()


def test_token_issue(cloud, admin_env):
    tok = os_cli(admin_env, "token", "issue")
    assert set(tok) >= {"id", "expires", "project_id", "user_id"}
    assert tok["id"].startswith("gAAAA"), "a Fernet token"
    assert tok["project_id"] == cloud.admin_project_id
    # The token the CLI got is valid for the API.
    status, body, _ = cloud.http("GET", "auth/tokens", headers={"X-Subject-Token": tok["id"]})
    assert status == 200
    assert body["token"]["user"]["name"] == "admin"
    assert body["token"]["project"]["name"] == "admin"
    assert {r["name"] for r in body["token"]["roles"]} >= {"admin", "member", "reader"}


def test_token_issue_as_other_user_scoped_to_its_project(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    tok = os_cli(user_env(admin_env, user["name"], user["password"], project=project["name"]), "token", "issue")
    assert tok["user_id"] == user["id"]
    assert tok["project_id"] == project["id"]


def test_bad_password_refused_same_error_as_unknown_user(cloud, admin_env):
    user = cloud.create_user()
    wrong, nobody = in_parallel(
        lambda: cli_fails(user_env(admin_env, user["name"], "not-" + user["password"]), "token", "issue", status=401),
        lambda: cli_fails(user_env(admin_env, unique("nobody"), "whatever"), "token", "issue", status=401),
    )
    # Nothing tells an existing user from a missing one.
    assert _error_line(wrong.stderr) == _error_line(nobody.stderr)
    assert user["id"] not in wrong.stderr and user["name"] not in wrong.stderr
    # The right password still works (one failure does not lock the account).
    ok = os_cli(user_env(admin_env, user["name"], user["password"]), "token", "issue")
    assert ok["user_id"] == user["id"]


def test_token_revoke(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    tok = os_cli(env, "token", "issue")["id"]
    # Before the revocation the token works with the client.
    shown = os_cli(token_env(admin_env, tok, project["id"]), "project", "show", project["id"])
    assert shown["id"] == project["id"]

    os_cli(env, "token", "revoke", tok)

    res = cli_fails(token_env(admin_env, tok, project["id"]), "project", "show", project["id"], status=401)
    assert "authentication" in res.stderr.lower() or "401" in res.stderr
    status, _, _ = cloud.http("GET", "auth/tokens", headers={"X-Subject-Token": tok})
    assert status == 404
    # Revoking one token leaves the user able to log in again.
    cloud.password_token(user["name"], user["password"], project=project["id"])


def test_disabled_user_refused_and_tokens_stop_working(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    tok, _ = cloud.password_token(user["name"], user["password"], project=project["id"])
    status, _, _ = cloud.http("GET", f"projects/{project['id']}", token=tok)
    assert status == 200

    os_cli(admin_env, "user", "set", "--disable", user["id"])
    assert cloud.get(f"users/{user['id']}")["user"]["enabled"] is False

    in_parallel(
        lambda: cli_fails(env, "token", "issue", status=401),
        lambda: cli_fails(token_env(admin_env, tok, project["id"]), "project", "show", project["id"], status=401),
    )
    status, _, _ = cloud.http("GET", f"projects/{project['id']}", token=tok)
    assert status == 401

    # Enabling the user again lets it log in (old tokens stay dead: they were revoked).
    os_cli(admin_env, "user", "set", "--enable", user["id"])
    assert os_cli(env, "token", "issue")["user_id"] == user["id"]
    status, _, _ = cloud.http("GET", f"projects/{project['id']}", token=tok)
    assert status == 401


def test_password_change_by_the_user(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    old, new = user["password"], "new-" + user["password"]
    env = user_env(admin_env, user["name"], old, project=project["name"])
    before, _ = cloud.password_token(user["name"], old, project=project["id"])
    os_cli(env, "user", "password", "set", "--original-password", old, "--password", new)
    # Tokens issued with the old password are revoked.
    assert cloud.http("GET", f"projects/{project['id']}", token=before)[0] == 401

    _, tok = in_parallel(
        lambda: cli_fails(env, "token", "issue", status=401),
        lambda: os_cli(user_env(admin_env, user["name"], new, project=project["name"]), "token", "issue"),
    )
    assert tok["user_id"] == user["id"] and tok["project_id"] == project["id"]


def test_password_change_needs_the_original_password(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    cli_fails(env, "user", "password", "set", "--original-password", "wrong", "--password", "x" + user["password"], status=401)
    # The password did not change.
    cloud.password_token(user["name"], user["password"], project=project["id"])


def test_catalog_list_has_identity_with_three_interfaces(cloud, admin_env):
    catalog = os_cli(admin_env, "catalog", "list")
    identity = [s for s in catalog if s["Type"] == "identity"]
    assert len(identity) == 1, catalog
    endpoints = identity[0]["Endpoints"]
    assert sorted(e["interface"] for e in endpoints) == ["admin", "internal", "public"]
    for e in endpoints:
        assert e["url"].rstrip("/") == f"{cloud.url}/identity"
        assert e["region"] == admin_env["OS_REGION_NAME"]
