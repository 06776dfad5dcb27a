//! Domain types of the identity service (what the database holds), separate from the wire
//! types in `api/`.

use serde_json::{Map, Value};

/// The id of the domain created at bootstrap, as Keystone names it.
pub const DEFAULT_DOMAIN_ID: &str = "default";

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[derive(Debug, Clone)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    /// None for a top-level project (whose wire `parent_id` is its domain).
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub password_hash: Option<String>,
    pub password_expires_at: Option<i64>,
    pub default_project_id: Option<String>,
    pub extra: Map<String, Value>,
    pub failed_auth_count: i64,
    pub failed_auth_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// None for a global role.
    pub domain_id: Option<String>,
    pub description: String,
    pub extra: Map<String, Value>,
}

/// Who holds a role where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentKind {
    UserProject,
    GroupProject,
    UserDomain,
    GroupDomain,
    UserSystem,
    GroupSystem,
}

impl AssignmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentKind::UserProject => "UserProject",
            AssignmentKind::GroupProject => "GroupProject",
            AssignmentKind::UserDomain => "UserDomain",
            AssignmentKind::GroupDomain => "GroupDomain",
            AssignmentKind::UserSystem => "UserSystem",
            AssignmentKind::GroupSystem => "GroupSystem",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "UserProject" => AssignmentKind::UserProject,
            "GroupProject" => AssignmentKind::GroupProject,
            "UserDomain" => AssignmentKind::UserDomain,
            "GroupDomain" => AssignmentKind::GroupDomain,
            "UserSystem" => AssignmentKind::UserSystem,
            "GroupSystem" => AssignmentKind::GroupSystem,
            _ => return None,
        })
    }
    pub fn is_group(self) -> bool {
        matches!(
            self,
            AssignmentKind::GroupProject
                | AssignmentKind::GroupDomain
                | AssignmentKind::GroupSystem
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub kind: AssignmentKind,
    pub actor_id: String,
    /// Project or domain id; "all" for the system.
    pub target_id: String,
    pub role_id: String,
    /// Inherited to the projects below the target (OS-INHERIT).
    pub inherited: bool,
}

#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub interface: String,
    pub url: String,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub description: String,
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    pub role_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RegisteredLimit {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub default_limit: i64,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Limit {
    pub id: String,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub resource_limit: i64,
    pub description: String,
}

/// Keystone's revocation event: every non-empty field must match the token.
#[derive(Debug, Clone, Default)]
pub struct RevocationEvent {
    pub user_id: String,
    pub project_id: String,
    pub domain_id: String,
    pub audit_id: String,
    /// Microseconds; tokens issued at or before it are revoked.
    pub issued_before: i64,
    pub revoked_at: i64,
}

pub fn extra_from_text(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn extra_to_text(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}
