-- Neutron's floating IP port forwardings: a floating IP's external port (per protocol) sent
-- to a port's fixed address and internal port, through the router the floating IP is on.
CREATE TABLE port_forwardings (
    id TEXT PRIMARY KEY,
    floatingip_id TEXT NOT NULL,
    internal_port_id TEXT NOT NULL,
    internal_ip_address TEXT NOT NULL,
    internal_port BIGINT NOT NULL,
    external_port BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    description TEXT NOT NULL,
    UNIQUE (floatingip_id, external_port, protocol),
    UNIQUE (internal_port_id, internal_ip_address, internal_port, protocol)
);
CREATE INDEX port_forwardings_fip ON port_forwardings (floatingip_id);
