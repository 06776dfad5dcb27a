-- The default server listing (newest first, marker pagination) walks this index in order and
-- stops after a page, instead of sorting every instance of the project.
CREATE INDEX instances_listing ON instances (project_id, deleted, created_at, uuid);
CREATE INDEX instances_listing_all ON instances (deleted, created_at, uuid);
