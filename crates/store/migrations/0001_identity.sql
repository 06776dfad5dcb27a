-- Identity (Keystone v3). Ids are TEXT (uuid hex, or 'default' for the default domain);
-- booleans are BIGINT 0/1; times are BIGINT microseconds since the epoch; `extra` is JSON text
-- holding the free-form attributes Keystone keeps (email, options, ...).

CREATE TABLE domains (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX domains_name ON domains (name);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL REFERENCES domains (id),
    -- NULL for a top-level project (the wire shows the domain id as parent_id then).
    parent_id TEXT REFERENCES projects (id),
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX projects_domain_name ON projects (domain_id, name);
CREATE INDEX projects_parent ON projects (parent_id);

CREATE TABLE project_tags (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (project_id, tag)
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL REFERENCES domains (id),
    enabled BIGINT NOT NULL DEFAULT 1,
    password_hash TEXT,
    password_expires_at BIGINT,
    password_created_at BIGINT,
    default_project_id TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    failed_auth_count BIGINT NOT NULL DEFAULT 0,
    failed_auth_at BIGINT,
    last_active_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_domain_name ON users (domain_id, name);

CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL REFERENCES domains (id),
    description TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_domain_name ON groups (domain_id, name);

CREATE TABLE user_groups (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group ON user_groups (group_id);

-- domain_id is '' for global roles so that the unique index covers them too.
CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX roles_domain_name ON roles (domain_id, name);

CREATE TABLE implied_roles (
    prior_role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    implied_role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

-- kind: UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem.
-- target_id is 'all' for system assignments.
CREATE TABLE assignments (
    kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    inherited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, actor_id, target_id, role_id, inherited)
);
CREATE INDEX assignments_actor ON assignments (actor_id);
CREATE INDEX assignments_target ON assignments (target_id);

CREATE TABLE regions (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT REFERENCES regions (id),
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE services (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    region_id TEXT REFERENCES regions (id),
    interface TEXT NOT NULL,
    url TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX endpoints_service ON endpoints (service_id);

CREATE TABLE application_credentials (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    expires_at BIGINT,
    unrestricted BIGINT NOT NULL DEFAULT 0,
    access_rules TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX application_credentials_user_name ON application_credentials (user_id, name);

CREATE TABLE application_credential_roles (
    application_credential_id TEXT NOT NULL REFERENCES application_credentials (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL,
    PRIMARY KEY (application_credential_id, role_id)
);

CREATE TABLE registered_limits (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (id),
    region_id TEXT NOT NULL DEFAULT '',
    resource_name TEXT NOT NULL,
    default_limit BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX registered_limits_unique ON registered_limits (service_id, region_id, resource_name);

-- Exactly one of project_id / domain_id is non-empty.
CREATE TABLE limits (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL DEFAULT '',
    domain_id TEXT NOT NULL DEFAULT '',
    service_id TEXT NOT NULL REFERENCES services (id),
    region_id TEXT NOT NULL DEFAULT '',
    resource_name TEXT NOT NULL,
    resource_limit BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX limits_unique ON limits (project_id, domain_id, service_id, region_id, resource_name);

-- Token revocation events (Keystone's model): a token is revoked when every non-empty field
-- matches it and it was issued at or before issued_before.
CREATE TABLE revocation_events (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL DEFAULT '',
    project_id TEXT NOT NULL DEFAULT '',
    domain_id TEXT NOT NULL DEFAULT '',
    audit_id TEXT NOT NULL DEFAULT '',
    issued_before BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

-- A counter bumped by every change that can alter a validated token (roles, users, projects);
-- controllers compare it to drop cached validations.
CREATE TABLE identity_generation (
    id BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO identity_generation (id, generation) VALUES (1, 1);
CREATE INDEX revocation_events_revoked_at ON revocation_events (revoked_at);
