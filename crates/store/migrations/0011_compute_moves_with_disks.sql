-- Moves that carry a guest's disks between hosts: where a live migration's destination waits
-- for the guest (reported by its agent, passed to the source's), and whether the destination
-- of a failed move has removed the copy it had started.
ALTER TABLE migrations ADD COLUMN dest_endpoint TEXT;
ALTER TABLE migrations ADD COLUMN dest_cleaned BIGINT NOT NULL DEFAULT 0;
