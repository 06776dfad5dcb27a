"""CRUD of projects, domains, users, groups and roles; group membership; role assignments;
implied roles; name validation.

Each operation under test goes through the openstack client; the state it leaves behind is
checked over HTTP where the client adds nothing (it is much faster)."""

from conftest import cli_fails, in_parallel, os_cli, unique


def _names(rows):
    return {r["Name"] for r in rows}


def test_project_crud(cloud, admin_env):
    name = unique("proj")
    p = os_cli(admin_env, "project", "create", "--domain", "default", "--description", "first", name)
    assert p["name"] == name and p["domain_id"] == "default" and p["enabled"] is True
    assert p["description"] == "first"

    listed, in_domain, shown = in_parallel(
        lambda: os_cli(admin_env, "project", "list"),
        lambda: os_cli(admin_env, "project", "list", "--domain", "default"),
        lambda: os_cli(admin_env, "project", "show", p["id"]),
    )
    assert name in _names(listed) and name in _names(in_domain)
    assert shown["id"] == p["id"] and shown["name"] == name

    renamed = name + "-x"
    os_cli(admin_env, "project", "set", "--name", renamed, "--description", "second", "--disable", p["id"])
    shown = os_cli(admin_env, "project", "show", renamed, "--domain", "default")
    assert shown["id"] == p["id"]
    assert shown["description"] == "second" and shown["enabled"] is False

    os_cli(admin_env, "project", "delete", p["id"])
    res = cli_fails(admin_env, "project", "show", p["id"])
    assert f"No Project found for {p['id']}" in res.stderr
    assert cloud.get(f"projects/{p['id']}") is None


def test_duplicate_project_name_conflicts(cloud, admin_env):
    name = unique("dup")
    cloud.create_project(name)
    d = cloud.create_domain()
    res, other = in_parallel(
        lambda: cli_fails(admin_env, "project", "create", "--domain", "default", name, status=409),
        # The same name in another domain is fine.
        lambda: os_cli(admin_env, "project", "create", "--domain", d["id"], name),
    )
    assert "conflict" in res.stderr.lower()
    assert other["domain_id"] == d["id"]


def test_over_long_project_name_is_refused(cloud, admin_env):
    name64 = ("q" * 52) + unique("")[-12:]
    res, ok = in_parallel(
        lambda: cli_fails(admin_env, "project", "create", "--domain", "default", "p" * 65, status=400),
        # 64 characters is the limit and is accepted.
        lambda: os_cli(admin_env, "project", "create", "--domain", "default", name64),
    )
    assert "name" in res.stderr
    assert ok["name"] == name64
    assert cloud.get(f"projects?name={'p' * 65}")["projects"] == []


def test_domain_crud_disable_then_delete(cloud, admin_env):
    name = unique("dom")
    d = os_cli(admin_env, "domain", "create", "--description", "one", name)
    assert d["name"] == name and d["enabled"] is True and d["description"] == "one"
    # A project and a user in the domain go with it.
    proj = cloud.create_project(domain_id=d["id"])
    user = cloud.create_user(domain_id=d["id"])

    listed, shown, _ = in_parallel(
        lambda: os_cli(admin_env, "domain", "list"),
        lambda: os_cli(admin_env, "domain", "show", name),
        # An enabled domain cannot be deleted.
        lambda: cli_fails(admin_env, "domain", "delete", d["id"], status=403),
    )
    assert name in _names(listed) and shown["id"] == d["id"]

    os_cli(admin_env, "domain", "set", "--description", "two", "--disable", d["id"])
    after = cloud.get(f"domains/{d['id']}")["domain"]
    assert after["enabled"] is False and after["description"] == "two"

    os_cli(admin_env, "domain", "delete", d["id"])
    assert cloud.get(f"domains/{d['id']}") is None
    assert cloud.get(f"projects/{proj['id']}") is None
    assert cloud.get(f"users/{user['id']}") is None


def test_default_domain_cannot_be_deleted(cloud, admin_env):
    status, _, _ = cloud.http("DELETE", "domains/default")
    assert status == 403
    assert os_cli(admin_env, "domain", "show", "default")["enabled"] is True


def test_user_crud(cloud, admin_env):
    name = unique("user")
    proj = cloud.create_project()
    u = os_cli(
        admin_env, "user", "create", "--domain", "default", "--password", "s3cret-pw",
        "--email", "a@example.org", "--project", proj["id"], name,
    )
    assert u["name"] == name and u["domain_id"] == "default" and u["enabled"] is True
    assert u["email"] == "a@example.org"
    assert u["default_project_id"] == proj["id"]
    assert "password" not in u

    listed, shown, _ = in_parallel(
        lambda: os_cli(admin_env, "user", "list", "--domain", "default"),
        lambda: os_cli(admin_env, "user", "show", name, "--domain", "default"),
        # Duplicate name in the same domain.
        lambda: cli_fails(admin_env, "user", "create", "--domain", "default", name, status=409),
    )
    assert name in _names(listed)
    assert shown["id"] == u["id"]

    os_cli(admin_env, "user", "set", "--email", "b@example.org", "--description", "desc", u["id"])
    after = cloud.get(f"users/{u['id']}")["user"]
    assert after["email"] == "b@example.org" and after["description"] == "desc"

    os_cli(admin_env, "user", "delete", u["id"])
    assert cloud.get(f"users/{u['id']}") is None


def test_group_crud_and_membership(cloud, admin_env):
    name = unique("grp")
    g = os_cli(admin_env, "group", "create", "--domain", "default", "--description", "team", name)
    assert g["name"] == name and g["domain_id"] == "default"
    user = cloud.create_user()
    listed, shown, _ = in_parallel(
        lambda: os_cli(admin_env, "group", "list", "--domain", "default"),
        lambda: os_cli(admin_env, "group", "show", g["id"]),
        lambda: os_cli(admin_env, "group", "add", "user", g["id"], user["id"]),
    )
    assert name in _names(listed) and shown["description"] == "team"

    res, members, _ = in_parallel(
        lambda: os_cli(admin_env, "group", "contains", "user", g["id"], user["id"], check=False),
        lambda: os_cli(admin_env, "user", "list", "--group", g["id"]),
        lambda: os_cli(admin_env, "group", "set", "--description", "squad", g["id"]),
    )
    assert res.ok and f"{user['id']} in group {g['id']}" in res.stdout, res.stderr
    assert {r["ID"] for r in members} == {user["id"]}
    assert cloud.get(f"groups/{g['id']}")["group"]["description"] == "squad"

    os_cli(admin_env, "group", "remove", "user", g["id"], user["id"])
    res = os_cli(admin_env, "group", "contains", "user", g["id"], user["id"], check=False)
    assert f"{user['id']} not in group {g['id']}" in res.stderr, (res.stdout, res.stderr)
    assert f"{user['id']} in group" not in res.stdout

    os_cli(admin_env, "group", "delete", g["id"])
    assert cloud.get(f"groups/{g['id']}") is None


def test_role_crud(cloud, admin_env):
    name = unique("role")
    r = os_cli(admin_env, "role", "create", "--description", "made by e2e", name)
    assert r["name"] == name
    listed, shown, _ = in_parallel(
        lambda: os_cli(admin_env, "role", "list"),
        lambda: os_cli(admin_env, "role", "show", name),
        lambda: cli_fails(admin_env, "role", "create", "member", status=409),
    )
    names = [x["Name"] for x in listed]
    assert name in names and {"admin", "member", "reader"} <= set(names)
    assert shown["id"] == r["id"]

    os_cli(admin_env, "role", "set", "--name", name + "-x", r["id"])
    assert cloud.get(f"roles/{r['id']}")["role"]["name"] == name + "-x"
    os_cli(admin_env, "role", "delete", r["id"])
    assert cloud.get(f"roles/{r['id']}") is None


def test_role_add_remove_and_assignment_list(cloud, admin_env):
    user = cloud.create_user()
    proj = cloud.create_project()
    os_cli(admin_env, "role", "add", "--user", user["id"], "--project", proj["id"], "member")

    rows = os_cli(admin_env, "role", "assignment", "list", "--user", user["id"], "--project", proj["id"], "--names")
    assert rows == [
        {
            "Role": "member",
            "User": f"{user['name']}@Default",
            "Group": "",
            "Project": f"{proj['name']}@Default",
            "Domain": "",
            "System": "",
            "Inherited": False,
        }
    ], rows

    # Effective: member implies reader; a group grant reaches its members.
    group = cloud.http("POST", "groups", {"group": {"name": unique("grp")}}, expect=201)[1]["group"]
    cloud.http("PUT", f"groups/{group['id']}/users/{user['id']}", expect=204)
    cloud.http("PUT", f"projects/{proj['id']}/groups/{group['id']}/roles/{cloud.role_id('manager')}", expect=204)
    eff, direct = in_parallel(
        lambda: os_cli(
            admin_env, "role", "assignment", "list", "--user", user["id"], "--project", proj["id"], "--effective", "--names"
        ),
        lambda: os_cli(admin_env, "role", "assignment", "list", "--user", user["id"], "--project", proj["id"]),
    )
    assert {r["Role"] for r in eff} == {"manager", "member", "reader"}, eff
    assert all(r["User"] == f"{user['name']}@Default" and r["Group"] == "" for r in eff), eff
    assert all(r["Project"] == f"{proj['name']}@Default" for r in eff), eff
    # Without --effective the group grant is not the user's own.
    assert [r["Role"] for r in direct] == [cloud.role_id("member")]

    os_cli(admin_env, "role", "remove", "--user", user["id"], "--project", proj["id"], "member")
    left = cloud.get(f"role_assignments?user.id={user['id']}&scope.project.id={proj['id']}")
    assert left["role_assignments"] == []
    # Removing it again: the API says 404 (the client itself ignores the status of the DELETE).
    status, body, _ = cloud.http("DELETE", f"projects/{proj['id']}/users/{user['id']}/roles/{cloud.role_id('member')}")
    assert status == 404, body


def test_domain_role_assignment(cloud, admin_env):
    d = cloud.create_domain()
    user = cloud.create_user(domain_id=d["id"])
    os_cli(admin_env, "role", "add", "--user", user["id"], "--domain", d["id"], "reader")
    rows = os_cli(admin_env, "role", "assignment", "list", "--user", user["id"], "--domain", d["id"], "--names")
    assert [(r["Role"], r["User"], r["Domain"], r["Project"]) for r in rows] == [
        ("reader", f"{user['name']}@{d['name']}", d["name"], "")
    ]


def test_implied_roles(cloud, admin_env):
    prior = cloud.create_role()
    implied = cloud.create_role()
    rule = os_cli(admin_env, "implied", "role", "create", prior["name"], "--implied-role", implied["name"])
    assert rule == {"implies": implied["id"], "prior_role": prior["id"]}, rule

    # A grant of the prior role is effectively also a grant of the implied role.
    user = cloud.create_user()
    proj = cloud.create_project()
    cloud.grant(prior["name"], user["id"], project_id=proj["id"])

    rules, _, eff = in_parallel(
        lambda: os_cli(admin_env, "implied", "role", "list"),
        # A cycle is refused.
        lambda: cli_fails(
            admin_env, "implied", "role", "create", implied["name"], "--implied-role", prior["name"], status=400
        ),
        lambda: os_cli(
            admin_env, "role", "assignment", "list", "--user", user["id"], "--project", proj["id"], "--effective", "--names"
        ),
    )
    mine = [r for r in rules if r["Prior Role ID"] == prior["id"]]
    assert len(mine) == 1 and mine[0]["Implied Role ID"] == implied["id"]
    assert mine[0]["Prior Role Name"] == prior["name"] and mine[0]["Implied Role Name"] == implied["name"]
    # The bootstrap chain is there too.
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in rules}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= pairs
    assert {r["Role"] for r in eff} == {prior["name"], implied["name"]}, eff

    os_cli(admin_env, "implied", "role", "delete", prior["name"], "--implied-role", implied["name"])
    assert cloud.get(f"roles/{prior['id']}/implies/{implied['id']}") is None
