-- The NICs of instances: one port each, in the order the guest sees them, and whether the
-- server's creator brought the port (kept when the server goes) or compute made it.
CREATE TABLE instance_nics (
    instance_uuid TEXT NOT NULL,
    position BIGINT NOT NULL,
    port_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    mac TEXT NOT NULL,
    mtu BIGINT NOT NULL,
    preserve BIGINT NOT NULL,
    PRIMARY KEY (instance_uuid, position)
);
CREATE INDEX instance_nics_port ON instance_nics (port_id);
