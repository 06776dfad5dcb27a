-- Images (Glance v2). Times are BIGINT microseconds; booleans 0/1; `properties` is a JSON
-- object of the free-form properties (kernel_id, hw_*, os_distro, ...).

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    protected BIGINT NOT NULL DEFAULT 0,
    os_hidden BIGINT NOT NULL DEFAULT 0,
    disk_format TEXT,
    container_format TEXT,
    min_disk BIGINT NOT NULL DEFAULT 0,
    min_ram BIGINT NOT NULL DEFAULT 0,
    size BIGINT,
    virtual_size BIGINT,
    checksum TEXT,
    os_hash_algo TEXT,
    os_hash_value TEXT,
    owner TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    -- Where the data is in the store ('' while there is none).
    location TEXT NOT NULL DEFAULT '',
    -- Why an image was killed, for the user.
    message TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_visibility ON images (visibility);

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);

CREATE TABLE image_members (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_member ON image_members (member_id);
