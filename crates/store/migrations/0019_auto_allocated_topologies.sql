-- Neutron's get-me-a-network: the network and router made for a project by
-- GET /v2.0/auto-allocated-topology/{project}. One per project (the key makes two racing
-- requests settle on one topology); the row goes with its network.
CREATE TABLE auto_allocated_topologies (
    project_id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL,
    router_id TEXT
);
