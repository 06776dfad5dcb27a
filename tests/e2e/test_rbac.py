"""Role-based access: member, reader and a domain-scoped admin, as the openstack client sees
them."""

from conftest import cli_fails, in_parallel, os_cli, unique, user_env


def test_member_cannot_create_projects_or_users(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    pname, uname = unique("proj"), unique("user")

    res, _, shown = in_parallel(
        lambda: cli_fails(env, "project", "create", "--domain", "default", pname, status=403),
        lambda: cli_fails(env, "user", "create", "--domain", "default", "--password", "pw-123456", uname, status=403),
        # The member can still work in its own project.
        lambda: os_cli(env, "project", "show", project["id"]),
    )
    assert "not authorized" in res.stderr.lower() or "forbidden" in res.stderr.lower()
    assert shown["name"] == project["name"]

    # Nothing was created.
    assert cloud.http("GET", f"projects?name={pname}")[1]["projects"] == []
    assert cloud.http("GET", f"users?name={uname}")[1]["users"] == []


def test_reader_can_look_but_not_change(cloud, admin_env):
    user, project = cloud.user_with_role("reader")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])

    # What the policy lets a project reader see: its project, itself, its projects.
    shown, me, mine, listed = in_parallel(
        lambda: os_cli(env, "project", "show", project["id"]),
        lambda: os_cli(env, "user", "show", user["id"]),
        lambda: os_cli(env, "project", "list", "--my-projects"),
        # A plain `project list` falls back to the caller's own projects on 403.
        lambda: os_cli(env, "project", "list"),
    )
    assert shown["id"] == project["id"] and me["name"] == user["name"]
    assert [p["ID"] for p in mine] == [project["id"]]
    assert [p["ID"] for p in listed] == [project["id"]]
    tok, _ = cloud.password_token(user["name"], user["password"], project=project["id"])
    assert cloud.http("GET", "projects", token=tok)[0] == 403

    # ... and no change at all.
    in_parallel(
        lambda: cli_fails(env, "project", "set", "--description", "changed", project["id"], status=403),
        lambda: cli_fails(env, "project", "create", "--domain", "default", unique("proj"), status=403),
        lambda: cli_fails(env, "user", "set", "--email", "x@example.org", user["id"], status=403),
        # Nor listing the projects of a domain.
        lambda: cli_fails(env, "project", "list", "--domain", "default", status=403),
        # `role add` exits 0 whatever the status of its PUT (openstacksdk ignores it), so the
        # refusal is checked on the API and by the assignments below.
        lambda: os_cli(env, "role", "add", "--user", user["id"], "--project", project["id"], "member", check=False),
    )
    status, _, _ = cloud.http(
        "PUT", f"projects/{project['id']}/users/{user['id']}/roles/{cloud.role_id('member')}", token=tok
    )
    assert status == 403

    _, body, _ = cloud.http("GET", f"projects/{project['id']}")
    assert body["project"]["description"] == ""
    _, body, _ = cloud.http("GET", f"role_assignments?user.id={user['id']}")
    assert [a["role"]["id"] for a in body["role_assignments"]] == [cloud.role_id("reader")]


def test_domain_admin_is_confined_to_its_domain(cloud, admin_env):
    dom_a, dom_b = cloud.create_domain(), cloud.create_domain()
    admin_a = cloud.create_user(domain_id=dom_a["id"])
    cloud.grant("admin", admin_a["id"], domain_id=dom_a["id"])
    in_b = cloud.create_user(domain_id=dom_b["id"])
    env = user_env(admin_env, admin_a["name"], admin_a["password"], domain=dom_a["name"], user_domain=dom_a["name"])

    # In its own domain: create and list users.
    new = os_cli(env, "user", "create", "--domain", dom_a["id"], "--password", "pw-123456", unique("user"))
    assert new["domain_id"] == dom_a["id"]
    listed, unfiltered = in_parallel(
        lambda: os_cli(env, "user", "list", "--domain", dom_a["id"]),
        # Without a filter a domain-scoped token lists its own domain's users only.
        lambda: os_cli(env, "user", "list"),
    )
    assert {u["ID"] for u in listed} == {admin_a["id"], new["id"]}
    assert {u["ID"] for u in unfiltered} == {admin_a["id"], new["id"]}

    # In domain B: 403 for both.
    name_b = unique("user")
    in_parallel(
        lambda: cli_fails(env, "user", "create", "--domain", dom_b["id"], "--password", "pw-123456", name_b, status=403),
        lambda: cli_fails(env, "user", "list", "--domain", dom_b["id"], status=403),
        # Nor can it touch cloud-wide things.
        lambda: cli_fails(env, "domain", "create", unique("dom"), status=403),
    )
    assert [u["id"] for u in cloud.get(f"users?domain_id={dom_b['id']}")["users"]] == [in_b["id"]]
