"""Application credentials: create, authenticate with, restrict, delete."""

from conftest import app_cred_env, cli_fails, in_parallel, os_cli, unique, user_env


def _token_roles(cloud, token):
    status, body, _ = cloud.http("GET", "auth/tokens?nocatalog", headers={"X-Subject-Token": token})
    assert status == 200, body
    return body["token"]


def test_app_cred_create_authenticate_delete(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    name = unique("ac")
    ac = os_cli(env, "application", "credential", "create", "--description", "for e2e", name)
    assert ac["Name"] == name and ac["Secret"] and ac["Project ID"] == project["id"]
    assert ac["Unrestricted"] is False
    assert ac["Description"] == "for e2e"
    assert sorted(r["name"] for r in ac["Roles"]) == ["member", "reader"]

    ac_env = app_cred_env(admin_env, ac["ID"], ac["Secret"])
    listed, tok = in_parallel(
        lambda: os_cli(env, "application", "credential", "list"),
        lambda: os_cli(ac_env, "token", "issue"),
    )
    assert [(a["ID"], a["Name"]) for a in listed] == [(ac["ID"], name)]
    assert tok["user_id"] == user["id"] and tok["project_id"] == project["id"]
    body = _token_roles(cloud, tok["id"])
    assert body["methods"] == ["application_credential"]
    assert body["application_credential"]["id"] == ac["ID"]
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}

    in_parallel(
        # A wrong secret is refused.
        lambda: cli_fails(app_cred_env(admin_env, ac["ID"], ac["Secret"] + "x"), "token", "issue", status=401),
        # A restricted application credential cannot make another one.
        lambda: cli_fails(ac_env, "application", "credential", "create", unique("ac"), status=403),
    )

    os_cli(env, "application", "credential", "delete", name)
    listed, _ = in_parallel(
        lambda: os_cli(env, "application", "credential", "list"),
        lambda: cli_fails(ac_env, "token", "issue", status=401),
    )
    assert listed == []
    # The token issued with it stopped working too.
    status, _, _ = cloud.http("GET", "auth/tokens", headers={"X-Subject-Token": tok["id"]})
    assert status == 404
    status, _, _ = cloud.http("GET", f"projects/{project['id']}", token=tok["id"])
    assert status == 401


def test_app_cred_with_limited_roles(cloud, admin_env):
    user, project = cloud.user_with_role("manager")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    ac = os_cli(env, "application", "credential", "create", "--role", "member", unique("ac"))
    # As Keystone: the chosen role and the roles it implies, not the user's other roles.
    assert sorted(r["name"] for r in ac["Roles"]) == ["member", "reader"]
    tok, unheld, unknown = in_parallel(
        lambda: os_cli(app_cred_env(admin_env, ac["ID"], ac["Secret"]), "token", "issue"),
        # A role the user does not have cannot be delegated (400), an unknown one is 404.
        lambda: cli_fails(env, "application", "credential", "create", "--role", "admin", unique("ac"), status=400),
        lambda: cli_fails(env, "application", "credential", "create", "--role", unique("nosuch"), unique("ac"), status=404),
    )
    assert {r["name"] for r in _token_roles(cloud, tok["id"])["roles"]} == {"member", "reader"}
    assert "unassigned role" in unheld.stderr
    assert len(cloud.get(f"users/{user['id']}/application_credentials")["application_credentials"]) == 1
