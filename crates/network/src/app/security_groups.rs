//! Security groups and their rules: each project's `default` group (made on first need, one
//! per project), rule validation as Neutron does it, duplicate rules refused.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;
use ipnet::IpNet;

use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::{Direction, EtherType, SecurityGroup, SecurityGroupRule};
use crate::NetworkService;

/// IP protocols a rule may name, with their numbers (Neutron's list).
pub const PROTOCOLS: [(&str, u8); 24] = [
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols whose rules carry a port range.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

/// The protocol's number (a name of `PROTOCOLS` or a number 0-255 as text).
pub fn protocol_number(p: &str) -> Option<u8> {
    PROTOCOLS
        .iter()
        .find(|(n, _)| *n == p)
        .map(|(_, v)| *v)
        .or_else(|| p.parse::<u8>().ok())
}

#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub stateful: bool,
}

#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub stateful: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewRule {
    pub project_id: Option<String>,
    pub security_group_id: String,
    pub direction: Direction,
    pub ethertype: EtherType,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
    pub description: String,
}

fn rule(
    project: &str,
    group: &str,
    direction: Direction,
    ethertype: EtherType,
    remote_group: Option<&str>,
    now: i64,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: new_id(),
        project_id: project.to_string(),
        security_group_id: group.to_string(),
        direction,
        ethertype,
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group.map(str::to_string),
        remote_address_group_id: None,
        description: String::new(),
        revision_number: 0,
        created_at: now,
        updated_at: now,
    }
}

/// Checks a rule's protocol, ports and remote as Neutron does; returns the protocol as stored
/// (`any` and empty: none).
fn check_rule(r: &NewRule) -> Result<Option<String>> {
    let protocol = match r.protocol.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(p) if p.is_empty() || p == "any" => None,
        Some(p) => {
            if protocol_number(&p).is_none() {
                return Err(NetworkError::bad_request(
                    "SecurityGroupRuleInvalidProtocol",
                    format!(
                        "Security group rule protocol {p} not supported. Only protocol values [{}] and integer representations [0 to 255] are supported.",
                        PROTOCOLS.iter().map(|(n, _)| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Some(p)
        }
    };
    let number = protocol.as_deref().and_then(protocol_number);
    let (min, max) = (r.port_range_min, r.port_range_max);
    match number {
        None if min.is_some() || max.is_some() => {
            return Err(NetworkError::bad_request(
                "SecurityGroupProtocolRequiredWithPorts",
                "Must also specify protocol if port range is given.",
            ))
        }
        Some(n) if PORT_PROTOCOLS.contains(&n) => {
            for v in [min, max].into_iter().flatten() {
                if !(1..=65535).contains(&v) {
                    return Err(NetworkError::bad_request(
                        "SecurityGroupInvalidPortValue",
                        format!("Invalid value for port {v}."),
                    ));
                }
            }
            match (min, max) {
                (Some(a), Some(b)) if a > b => {
                    return Err(NetworkError::bad_request(
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ))
                }
                (None, Some(_)) | (Some(_), None) => {
                    return Err(NetworkError::bad_request(
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                    ))
                }
                _ => {}
            }
        }
        Some(1 | 58) => {
            // ICMP: port_range_min is the type, port_range_max the code.
            for (name, v) in [("type", min), ("code", max)] {
                if let Some(v) = v {
                    if !(0..=255).contains(&v) {
                        return Err(NetworkError::bad_request(
                            "SecurityGroupInvalidIcmpValue",
                            format!("Invalid value for ICMP {name} (port_range_min) {v}. It must be 0 to 255."),
                        ));
                    }
                }
            }
            if min.is_none() && max.is_some() {
                return Err(NetworkError::bad_request(
                    "SecurityGroupMissingIcmpType",
                    format!("ICMP code (port-range-max) {} is provided but ICMP type (port-range-min) is missing.", max.unwrap_or(0)),
                ));
            }
        }
        Some(_) if min.is_some() || max.is_some() => {
            return Err(NetworkError::bad_request(
                "SecurityGroupInvalidProtocolForPort",
                format!(
                    "Invalid protocol {} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.",
                    protocol.as_deref().unwrap_or("")
                ),
            ))
        }
        Some(_) | None => {}
    }
    let remotes = [
        r.remote_ip_prefix.is_some(),
        r.remote_group_id.is_some(),
        r.remote_address_group_id.is_some(),
    ];
    if remotes.iter().filter(|b| **b).count() > 1 {
        return Err(NetworkError::bad_request(
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
        ));
    }
    if let Some(prefix) = &r.remote_ip_prefix {
        if prefix.addr().is_ipv4() != (r.ethertype == EtherType::V4) {
            return Err(NetworkError::bad_request(
                "SecurityGroupConflictingEtherType",
                format!(
                    "Conflicting value ethertype {} for CIDR {prefix}",
                    r.ethertype.as_str()
                ),
            ));
        }
    }
    if number == Some(58) && r.ethertype == EtherType::V4 {
        return Err(NetworkError::bad_request(
            "SecurityGroupEthertypeConflictWithProtocol",
            "Ethertype IPv4 is not supported with protocol ipv6-icmp.",
        ));
    }
    Ok(protocol)
}

/// Whether two rules match the same traffic (what makes one a duplicate of the other).
fn same_traffic(a: &SecurityGroupRule, b: &SecurityGroupRule) -> bool {
    let proto = |p: &Option<String>| p.as_deref().and_then(protocol_number);
    a.direction == b.direction
        && a.ethertype == b.ethertype
        && proto(&a.protocol) == proto(&b.protocol)
        && a.port_range_min == b.port_range_min
        && a.port_range_max == b.port_range_max
        && a.remote_ip_prefix == b.remote_ip_prefix
        && a.remote_group_id == b.remote_group_id
        && a.remote_address_group_id == b.remote_address_group_id
}

impl NetworkService {
    /// The project's `default` group, made (with Neutron's four rules) when it has none.
    pub(crate) async fn ensure_default_group(
        &self,
        tx: &mut db::Conn,
        project: &str,
    ) -> Result<String> {
        if let Some(id) = db::security_groups::default_of(tx, project).await? {
            return Ok(id);
        }
        let now = now_micros();
        let g = SecurityGroup {
            id: new_id(),
            project_id: project.to_string(),
            name: "default".into(),
            description: "Default security group".into(),
            stateful: true,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            rules: Vec::new(),
            tags: Vec::new(),
        };
        db::security_groups::insert(tx, &g).await?;
        if !db::security_groups::claim_default(tx, project, &g.id).await? {
            // Another writer made it first (PostgreSQL); use theirs.
            db::security_groups::delete(tx, &g.id).await?;
            return db::security_groups::default_of(tx, project)
                .await?
                .ok_or_else(|| NetworkError::security_group_not_found("default"));
        }
        for (dir, eth, remote) in [
            (Direction::Egress, EtherType::V4, None),
            (Direction::Egress, EtherType::V6, None),
            (Direction::Ingress, EtherType::V4, Some(g.id.as_str())),
            (Direction::Ingress, EtherType::V6, Some(g.id.as_str())),
        ] {
            db::security_groups::insert_rule(tx, &rule(project, &g.id, dir, eth, remote, now))
                .await?;
        }
        Ok(g.id)
    }

    /// Makes the caller's project's default group when it has none (Neutron does on the
    /// project's first security group call).
    pub async fn ensure_caller_default_group(&self, auth: &AuthContext) -> Result<()> {
        let Some(project) = auth.project_id() else {
            return Ok(());
        };
        {
            let mut conn = self.read().await?;
            if db::security_groups::default_of(&mut conn, project)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        let mut tx = self.write().await?;
        self.ensure_default_group(&mut tx, project).await?;
        tx.commit().await?;
        Ok(())
    }

    pub fn group_visible(g: &SecurityGroup, auth: &AuthContext) -> bool {
        auth.is_admin || auth.project_id() == Some(g.project_id.as_str())
    }

    pub async fn find_group(&self, id: &str, auth: &AuthContext) -> Result<SecurityGroup> {
        let mut conn = self.read().await?;
        match db::security_groups::get(&mut conn, id).await? {
            Some(g) if Self::group_visible(&g, auth) => Ok(g),
            _ => Err(NetworkError::security_group_not_found(id)),
        }
    }

    /// Whether the group is its project's `default` group.
    pub async fn is_default_group(&self, id: &str) -> Result<bool> {
        let mut conn = self.read().await?;
        Ok(db::security_groups::is_default(&mut conn, id).await?)
    }

    pub async fn list_groups(&self, auth: &AuthContext) -> Result<Vec<SecurityGroup>> {
        self.ensure_caller_default_group(auth).await?;
        let mut conn = self.read().await?;
        Ok(db::security_groups::list(&mut conn, listing_scope(auth)).await?)
    }

    /// Ids of every project's default group (for `belongs_to_default_sg`).
    pub async fn default_group_ids(&self) -> Result<std::collections::HashSet<String>> {
        let mut conn = self.read().await?;
        Ok(db::security_groups::default_ids(&mut conn)
            .await?
            .into_iter()
            .collect())
    }

    pub async fn create_group(&self, auth: &AuthContext, req: NewGroup) -> Result<SecurityGroup> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        let mut tx = self.write().await?;
        self.ensure_default_group(&mut tx, &project).await?;
        if req.name == "default" {
            return Err(NetworkError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        self.check_quota(&mut tx, &project, "security_group")
            .await?;
        let now = now_micros();
        let mut g = SecurityGroup {
            id: new_id(),
            project_id: project.clone(),
            name: req.name,
            description: req.description,
            stateful: req.stateful,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            rules: Vec::new(),
            tags: Vec::new(),
        };
        db::security_groups::insert(&mut tx, &g).await?;
        for eth in [EtherType::V4, EtherType::V6] {
            let r = rule(&project, &g.id, Direction::Egress, eth, None, now);
            db::security_groups::insert_rule(&mut tx, &r).await?;
            g.rules.push(r);
        }
        tx.commit().await?;
        Ok(g)
    }

    pub async fn update_group(
        &self,
        id: &str,
        c: GroupChanges,
        if_match: Option<i64>,
    ) -> Result<SecurityGroup> {
        let mut tx = self.write().await?;
        let mut g = db::security_groups::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::security_group_not_found(id))?;
        Self::check_revision(if_match, g.revision_number)?;
        if let Some(name) = c.name {
            if name != g.name && db::security_groups::is_default(&mut tx, id).await? {
                return Err(NetworkError::conflict(
                    "SecurityGroupCannotUpdateDefault",
                    "Updating default security group not allowed.",
                ));
            }
            if name == "default" && g.name != "default" {
                return Err(NetworkError::conflict(
                    "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.",
                ));
            }
            g.name = name;
        }
        if let Some(d) = c.description {
            g.description = d;
        }
        if let Some(s) = c.stateful {
            if s != g.stateful && db::ports::group_in_use(&mut tx, id).await? {
                return Err(NetworkError::conflict(
                    "SecurityGroupInUse",
                    format!("Security Group {id} in use."),
                ));
            }
            g.stateful = s;
        }
        g.revision_number += 1;
        g.updated_at = now_micros();
        db::security_groups::update(&mut tx, &g).await?;
        tx.commit().await?;
        Ok(g)
    }

    pub async fn delete_group(&self, auth: &AuthContext, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        db::security_groups::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::security_group_not_found(id))?;
        if db::security_groups::is_default(&mut tx, id).await? && !auth.is_admin {
            return Err(NetworkError::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        if db::ports::group_in_use(&mut tx, id).await? {
            return Err(NetworkError::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        let naming = db::security_groups::delete_rules_naming(&mut tx, id).await?;
        db::security_groups::delete(&mut tx, id).await?;
        tx.commit().await?;
        for g in &naming {
            self.wake_group(g).await;
        }
        Ok(())
    }

    pub async fn find_rule(&self, id: &str, auth: &AuthContext) -> Result<SecurityGroupRule> {
        let mut conn = self.read().await?;
        let r = db::security_groups::get_rule(&mut conn, id)
            .await?
            .ok_or_else(|| NetworkError::security_group_rule_not_found(id))?;
        if auth.is_admin || auth.project_id() == Some(r.project_id.as_str()) {
            return Ok(r);
        }
        match db::security_groups::get(&mut conn, &r.security_group_id).await? {
            Some(g) if Self::group_visible(&g, auth) => Ok(r),
            _ => Err(NetworkError::security_group_rule_not_found(id)),
        }
    }

    pub async fn list_rules(&self, auth: &AuthContext) -> Result<Vec<SecurityGroupRule>> {
        self.ensure_caller_default_group(auth).await?;
        let mut conn = self.read().await?;
        Ok(db::security_groups::list_rules(&mut conn, listing_scope(auth)).await?)
    }

    /// Creates rules, all or none.
    pub async fn create_rules(
        &self,
        auth: &AuthContext,
        reqs: Vec<NewRule>,
    ) -> Result<Vec<SecurityGroupRule>> {
        let mut tx = self.write().await?;
        let mut out = Vec::with_capacity(reqs.len());
        for req in reqs {
            let protocol = check_rule(&req)?;
            let group = db::security_groups::get(&mut tx, &req.security_group_id)
                .await?
                .filter(|g| Self::group_visible(g, auth))
                .ok_or_else(|| NetworkError::security_group_not_found(&req.security_group_id))?;
            let project = match req.project_id.as_deref() {
                Some(p) => super::owner_for(auth, Some(p))?,
                None => group.project_id.clone(),
            };
            if let Some(remote) = &req.remote_group_id {
                let found = db::security_groups::get(&mut tx, remote)
                    .await?
                    .filter(|g| Self::group_visible(g, auth) || g.project_id == group.project_id);
                if found.is_none() {
                    return Err(NetworkError::security_group_not_found(remote));
                }
            }
            if let Some(ag) = &req.remote_address_group_id {
                let found = db::address_groups::get(&mut tx, ag).await?.filter(|g| {
                    Self::address_group_visible(g, auth) || g.project_id == group.project_id
                });
                if found.is_none() {
                    return Err(super::address_groups::address_group_not_found(ag));
                }
            }
            self.check_quota(&mut tx, &project, "security_group_rule")
                .await?;
            let now = now_micros();
            let r = SecurityGroupRule {
                id: new_id(),
                project_id: project,
                security_group_id: group.id.clone(),
                direction: req.direction,
                ethertype: req.ethertype,
                protocol,
                port_range_min: req.port_range_min,
                port_range_max: req.port_range_max,
                remote_ip_prefix: req.remote_ip_prefix,
                remote_group_id: req.remote_group_id,
                remote_address_group_id: req.remote_address_group_id,
                description: req.description,
                revision_number: 0,
                created_at: now,
                updated_at: now,
            };
            let existing = db::security_groups::rules_of(&mut tx, &group.id).await?;
            if let Some(dup) = existing.iter().find(|e| same_traffic(e, &r)) {
                return Err(NetworkError::conflict(
                    "SecurityGroupRuleExists",
                    format!("Security group rule already exists. Rule id is {}.", dup.id),
                ));
            }
            db::security_groups::insert_rule(&mut tx, &r).await?;
            db::security_groups::bump_revision(&mut tx, &group.id, now).await?;
            out.push(r);
        }
        tx.commit().await?;
        let groups: std::collections::BTreeSet<&str> =
            out.iter().map(|r| r.security_group_id.as_str()).collect();
        for g in groups {
            self.wake_group(g).await;
        }
        Ok(out)
    }

    pub async fn delete_rule(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let r = db::security_groups::get_rule(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::security_group_rule_not_found(id))?;
        db::security_groups::delete_rule(&mut tx, id).await?;
        db::security_groups::bump_revision(&mut tx, &r.security_group_id, now_micros()).await?;
        tx.commit().await?;
        self.wake_group(&r.security_group_id).await;
        Ok(())
    }
}
