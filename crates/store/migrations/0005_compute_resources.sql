-- Compute resources: Nova shows an integer `id` on `GET /os-keypairs/{name}`; assigned as
-- MAX(id)+1 inside the creating write transaction, like the other wire-visible integer ids.
ALTER TABLE keypairs ADD COLUMN id BIGINT NOT NULL DEFAULT 0;
