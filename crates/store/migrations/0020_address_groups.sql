-- Neutron's address groups: named sets of CIDRs that security group rules name as their
-- remote (`remote_address_group_id`). The addresses are a JSON list of normalized CIDRs.
CREATE TABLE address_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    addresses TEXT NOT NULL,
    revision_number BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX address_groups_project ON address_groups (project_id);
CREATE INDEX security_group_rules_remote_ag ON security_group_rules (remote_address_group_id);
