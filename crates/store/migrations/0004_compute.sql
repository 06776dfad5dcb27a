-- Compute (Nova v2.1). Times are BIGINT microseconds (NULL when not happened); booleans 0/1;
-- JSON columns are TEXT. Integer ids that Nova shows on the wire (aggregates, services,
-- migrations, hypervisors) are assigned as MAX(id)+1 inside a write transaction.

-- Flavors. `id` is Nova's flavorid (a string: "1", "42", or a UUID).
CREATE TABLE flavors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    vcpus BIGINT NOT NULL,
    ram BIGINT NOT NULL,
    disk BIGINT NOT NULL,
    ephemeral BIGINT NOT NULL DEFAULT 0,
    swap BIGINT NOT NULL DEFAULT 0,
    rxtx_factor DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    is_public BIGINT NOT NULL DEFAULT 1,
    disabled BIGINT NOT NULL DEFAULT 0,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE flavor_extra_specs (
    flavor_id TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (flavor_id, key)
);

CREATE TABLE flavor_projects (
    flavor_id TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

-- Key pairs belong to a user.
CREATE TABLE keypairs (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT 'ssh',
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);

CREATE TABLE aggregates (
    id BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    availability_zone TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE aggregate_hosts (
    aggregate_id BIGINT NOT NULL REFERENCES aggregates (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, host)
);

CREATE TABLE aggregate_metadata (
    aggregate_id BIGINT NOT NULL REFERENCES aggregates (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, key)
);

-- Server groups; `rules` is a JSON object ({"max_server_per_host": 2}).
CREATE TABLE server_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    policy TEXT NOT NULL,
    rules TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups (project_id);

CREATE TABLE server_group_members (
    group_id TEXT NOT NULL REFERENCES server_groups (id) ON DELETE CASCADE,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (group_id, instance_id)
);
CREATE INDEX server_group_members_instance ON server_group_members (instance_id);

-- Quota limits set with `openstack quota set` (project_id '' = the defaults, quota class
-- "default"; user_id '' = the project's limit). Resources as Nova names them: instances,
-- cores, ram, key_pairs, metadata_items, server_groups, server_group_members,
-- injected_files, injected_file_content_bytes, injected_file_path_bytes.
CREATE TABLE compute_quotas (
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id, resource)
);

-- One row per project that ever created a server: creates lock it (UPDATE) first, so quota
-- checks of one project are serialized on PostgreSQL too (SQLite serializes all writers).
CREATE TABLE compute_project_locks (
    project_id TEXT PRIMARY KEY,
    counter BIGINT NOT NULL DEFAULT 0
);

-- nova-compute (and other) services, one per host and binary.
CREATE TABLE compute_services (
    id BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    service_binary TEXT NOT NULL,
    topic TEXT,
    disabled BIGINT NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    forced_down BIGINT NOT NULL DEFAULT 0,
    -- Last heartbeat of the host's agent.
    last_seen_up BIGINT,
    version BIGINT NOT NULL DEFAULT 66,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    UNIQUE (host, service_binary)
);

-- Hypervisors (Nova's compute nodes), reported by the agent of each host. `uuid` is also the
-- placement resource provider's uuid.
CREATE TABLE compute_nodes (
    id BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    hypervisor_hostname TEXT NOT NULL UNIQUE,
    hypervisor_type TEXT NOT NULL,
    hypervisor_version BIGINT NOT NULL DEFAULT 0,
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    local_gb BIGINT NOT NULL,
    host_ip TEXT NOT NULL DEFAULT '127.0.0.1',
    cpu_info TEXT NOT NULL DEFAULT '{}',
    -- Seconds since the host booted, as the agent last reported it, and when.
    uptime_seconds BIGINT NOT NULL DEFAULT 0,
    -- Traits the driver reports (JSON array), also pushed to placement.
    traits TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

-- Instances. The API writes the desired state (`desired_power`, and `task_state` for an
-- operation in progress); the host's agent converges and writes `power_state`/`vm_state`.
CREATE TABLE instances (
    uuid TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    display_description TEXT,
    hostname TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    image_ref TEXT NOT NULL DEFAULT '',
    -- The flavor at boot (and `new_flavor` during a resize), as JSON snapshots: Nova keeps
    -- them with the instance so a deleted flavor does not change running servers.
    flavor TEXT NOT NULL,
    new_flavor TEXT,
    old_flavor TEXT,
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    root_gb BIGINT NOT NULL,
    ephemeral_gb BIGINT NOT NULL DEFAULT 0,
    key_name TEXT,
    key_data TEXT,
    user_data TEXT,
    config_drive TEXT NOT NULL DEFAULT '',
    availability_zone TEXT,
    -- Where it runs (NULL before scheduling or when shelved offloaded).
    host TEXT,
    node TEXT,
    vm_state TEXT NOT NULL,
    task_state TEXT,
    power_state BIGINT NOT NULL DEFAULT 0,
    -- What the agent must converge to: running, stopped, paused, suspended, absent.
    desired_power TEXT NOT NULL DEFAULT 'running',
    -- The vm_state to show once the agent reports this generation done (active, stopped,
    -- paused, suspended, shelved, shelved_offloaded, rescued, resized, deleted).
    target_vm_state TEXT NOT NULL DEFAULT 'active',
    -- A one-shot operation for the agent at this generation (soft_reboot, hard_reboot,
    -- recreate, crash_dump), NULL when none.
    one_shot TEXT,
    -- The generation the agent last reported done.
    done_generation BIGINT NOT NULL DEFAULT -1,
    -- Bumped by every API change of the desired state; the agent reports the generation it
    -- converged to, so a report for an older desire is recognised as stale.
    generation BIGINT NOT NULL DEFAULT 0,
    locked BIGINT NOT NULL DEFAULT 0,
    locked_by TEXT,
    locked_reason TEXT,
    access_ip_v4 TEXT,
    access_ip_v6 TEXT,
    reservation_id TEXT NOT NULL,
    launch_index BIGINT NOT NULL DEFAULT 0,
    progress BIGINT NOT NULL DEFAULT 0,
    -- JSON: requested networks, security groups, scheduler hints, block device mapping.
    request_spec TEXT NOT NULL DEFAULT '{}',
    -- JSON: addresses by network name, as the network side reports them.
    addresses TEXT NOT NULL DEFAULT '{}',
    -- Shown by os-server-password (encrypted by the guest).
    password TEXT,
    launched_at BIGINT,
    terminated_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    deleted_at BIGINT,
    deleted BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX instances_project ON instances (project_id, deleted);
CREATE INDEX instances_host ON instances (host, deleted);
CREATE INDEX instances_created ON instances (created_at);

CREATE TABLE instance_metadata (
    instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (instance_uuid, key)
);

CREATE TABLE instance_tags (
    instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (instance_uuid, tag)
);

-- The latest fault is shown on the server (status ERROR).
CREATE TABLE instance_faults (
    id BIGINT PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
    code BIGINT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '',
    host TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX instance_faults_instance ON instance_faults (instance_uuid);

-- os-instance-actions and their events: also the task records the agent works through.
CREATE TABLE instance_actions (
    id BIGINT PRIMARY KEY,
    instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
    request_id TEXT NOT NULL,
    action TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    message TEXT,
    start_time BIGINT NOT NULL,
    finish_time BIGINT,
    updated_at BIGINT
);
CREATE INDEX instance_actions_instance ON instance_actions (instance_uuid);

CREATE TABLE instance_action_events (
    id BIGINT PRIMARY KEY,
    action_id BIGINT NOT NULL REFERENCES instance_actions (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    result TEXT,
    traceback TEXT,
    host TEXT,
    start_time BIGINT NOT NULL,
    finish_time BIGINT
);
CREATE INDEX instance_action_events_action ON instance_action_events (action_id);

-- Resize, cold and live migrations and evacuations (os-migrations).
CREATE TABLE migrations (
    id BIGINT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    instance_uuid TEXT NOT NULL,
    source_compute TEXT,
    dest_compute TEXT,
    source_node TEXT,
    dest_node TEXT,
    old_flavor_id TEXT,
    new_flavor_id TEXT,
    migration_type TEXT NOT NULL,
    status TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX migrations_instance ON migrations (instance_uuid);
