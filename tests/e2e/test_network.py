"""The networking API as the openstack client drives it (the issue's user story up to the
data plane): networks, subnets, ports, routers with a gateway, floating IPs, security groups
and quotas, for a member of a fresh project."""

from conftest import cli_fails, os_cli, unique, user_env


def test_a_project_builds_its_network_and_reaches_public(cloud, admin_env):
    user, project = cloud.user_with_role("member")
    env = user_env(admin_env, user["name"], user["password"], project=project["name"])
    net, sub, router, sg = unique("app"), unique("app-v4"), unique("r1"), unique("web")

    created = os_cli(env, "network", "create", net)
    assert created["status"] == "ACTIVE" and created["mtu"] == 1450
    subnet = os_cli(env, "subnet", "create", "--network", net, "--subnet-range", "10.0.0.0/24", sub)
    assert subnet["gateway_ip"] == "10.0.0.1"
    os_cli(env, "router", "create", router)
    os_cli(env, "router", "set", "--external-gateway", "public", router)
    os_cli(env, "router", "add", "subnet", router, sub)
    shown = os_cli(env, "router", "show", router)
    assert shown["external_gateway_info"]["network_id"] == os_cli(env, "network", "show", "public")["id"]

    os_cli(env, "security", "group", "create", sg)
    rule = os_cli(env, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80",
                  "--remote-ip", "0.0.0.0/0", sg, json_output=True)
    assert rule["port_range_min"] == 80 and rule["remote_ip_prefix"] == "0.0.0.0/0"
    rules = os_cli(env, "security", "group", "rule", "list", sg, json_output=True)
    assert len(rules) == 3  # two egress rules of a new group, and ours

    port = os_cli(env, "port", "create", "--network", net, "--security-group", sg, unique("p"))
    assert port["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    fip = os_cli(env, "floating", "ip", "create", "public")
    assert fip["floating_ip_address"].startswith("172.24.4.")
    os_cli(env, "floating", "ip", "set", "--port", port["id"], fip["id"])
    assert os_cli(env, "floating", "ip", "show", fip["id"])["fixed_ip_address"] == "10.0.0.2"

    # The quota the client shows counts what the project made.
    quota = os_cli(env, "quota", "show", "--usage", project["id"])
    assert isinstance(quota, list), quota
    by_name = {q["Resource"]: q for q in quota}
    assert by_name["networks"]["In Use"] == 1
    assert by_name["routers"]["In Use"] == 1

    # What is in use cannot go; taken apart in order, everything goes.
    cli_fails(env, "network", "delete", net, status=409)
    cli_fails(env, "router", "delete", router, status=409)
    os_cli(env, "floating", "ip", "delete", fip["id"])
    os_cli(env, "port", "delete", port["id"])
    os_cli(env, "router", "remove", "subnet", router, sub)
    os_cli(env, "router", "delete", router)
    os_cli(env, "security", "group", "delete", sg)
    os_cli(env, "network", "delete", net)
    assert all(n["Name"] != net for n in os_cli(env, "network", "list"))
    assert [p for p in os_cli(env, "port", "list")] == []
