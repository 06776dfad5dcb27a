-- Routers, floating IPs and subnet pools (Neutron's L3 and subnet allocation). A router's
-- interfaces and gateway, and a floating IP's address, are ports (`device_owner`
-- network:router_interface / network:router_gateway / network:floatingip).

CREATE TABLE routers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    admin_state_up BIGINT NOT NULL,
    status TEXT NOT NULL,
    -- The external network of its gateway (none: no gateway), and whether it SNATs.
    gw_network_id TEXT REFERENCES networks (id),
    enable_snat BIGINT NOT NULL,
    routes TEXT NOT NULL,
    az_hints TEXT NOT NULL,
    revision_number BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX routers_project ON routers (project_id);

CREATE TABLE floating_ips (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    floating_network_id TEXT NOT NULL REFERENCES networks (id),
    floating_ip_address TEXT NOT NULL,
    -- The port holding the floating address on the external network.
    floating_port_id TEXT NOT NULL,
    -- The port, address and router it forwards to (none while not associated).
    port_id TEXT,
    fixed_ip_address TEXT,
    router_id TEXT,
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    revision_number BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX floating_ips_project ON floating_ips (project_id);
CREATE INDEX floating_ips_port ON floating_ips (port_id);
-- One floating IP per fixed address of a port (per external network).
CREATE UNIQUE INDEX floating_ips_fixed ON floating_ips (floating_network_id, port_id, fixed_ip_address);

CREATE TABLE subnetpools (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    ip_version BIGINT NOT NULL,
    prefixes TEXT NOT NULL,
    default_prefixlen BIGINT NOT NULL,
    min_prefixlen BIGINT NOT NULL,
    max_prefixlen BIGINT NOT NULL,
    shared BIGINT NOT NULL,
    is_default BIGINT NOT NULL,
    default_quota BIGINT,
    revision_number BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subnetpools_project ON subnetpools (project_id);
