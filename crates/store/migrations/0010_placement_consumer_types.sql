-- Compute's placement consumers carry Nova's consumer types (INSTANCE, MIGRATION) so that the
-- allocation audit can tell them from other services' consumers; consumers written before
-- got none.
UPDATE placement_consumers SET consumer_type = 'INSTANCE'
    WHERE consumer_type IS NULL AND uuid IN (SELECT uuid FROM instances);
UPDATE placement_consumers SET consumer_type = 'MIGRATION'
    WHERE consumer_type IS NULL AND uuid IN (SELECT uuid FROM migrations);
