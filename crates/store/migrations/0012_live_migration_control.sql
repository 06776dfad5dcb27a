-- Live migrations an admin forced to complete (Nova's force-complete): the source pauses the
-- guest and lifts the bandwidth cap.
ALTER TABLE migrations ADD COLUMN force_complete BIGINT NOT NULL DEFAULT 0;
