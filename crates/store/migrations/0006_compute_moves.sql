-- Moves of instances between hosts (resize, cold and live migration, evacuation).
-- The migration row carries what the move needs besides the instance row: both flavor
-- snapshots (the instance keeps the new one; revert restores the old), the vm_state and
-- power the instance had before (restored by confirm and revert), and whether the host the
-- instance left has removed its guest (until then that host's agent is told to remove it).
ALTER TABLE migrations ADD COLUMN old_flavor TEXT;
ALTER TABLE migrations ADD COLUMN new_flavor TEXT;
ALTER TABLE migrations ADD COLUMN prior_vm_state TEXT;
ALTER TABLE migrations ADD COLUMN prior_power TEXT;
ALTER TABLE migrations ADD COLUMN source_cleaned BIGINT NOT NULL DEFAULT 0;
CREATE INDEX migrations_source ON migrations (source_compute, source_cleaned);
CREATE INDEX migrations_dest ON migrations (dest_compute, status);
