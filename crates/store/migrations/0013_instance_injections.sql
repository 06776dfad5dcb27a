-- What a guest is given once as it is built (Nova's personality files and admin password),
-- sealed with the compute service's key, kept only while the create or rebuild that asked
-- for it (the instance's generation then) is under way.
CREATE TABLE instance_injections (
    instance_uuid TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
