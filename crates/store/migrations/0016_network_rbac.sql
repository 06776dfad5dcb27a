-- RBAC policies: a network shared with (access_as_shared) or usable as external by
-- (access_as_external) one project or every one ('*'). A network's `shared` flag is the
-- '*' access_as_shared entry, kept in step with it.
CREATE TABLE network_rbacs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_project TEXT NOT NULL,
    revision_number BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX network_rbacs_entry ON network_rbacs (object_type, object_id, action, target_project);
CREATE INDEX network_rbacs_target ON network_rbacs (target_project);
