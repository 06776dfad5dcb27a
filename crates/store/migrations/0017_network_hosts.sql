-- Hosts that run a data plane (their agent registered it), with the endpoint their VXLAN
-- tunnels end at; and the index that finds the ports bound to a host.
CREATE TABLE network_hosts (
    host TEXT PRIMARY KEY,
    vtep_ip TEXT NOT NULL,
    vtep_port BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE INDEX ports_binding_host ON ports (binding_host_id);
