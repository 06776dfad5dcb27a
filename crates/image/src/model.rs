//! Domain types of the image service.

use serde_json::{Map, Value};

/// Image statuses, as Glance names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Saving,
    Active,
    Killed,
    Deleted,
    Deactivated,
    Uploading,
    Importing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Active => "active",
            Status::Killed => "killed",
            Status::Deleted => "deleted",
            Status::Deactivated => "deactivated",
            Status::Uploading => "uploading",
            Status::Importing => "importing",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "queued" => Status::Queued,
            "saving" => Status::Saving,
            "active" => Status::Active,
            "killed" => Status::Killed,
            "deleted" => Status::Deleted,
            "deactivated" => Status::Deactivated,
            "uploading" => Status::Uploading,
            "importing" => Status::Importing,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
    Shared,
    Community,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
        }
    }
    pub fn parse(s: &str) -> Option<Visibility> {
        Some(match s {
            "public" => Visibility::Public,
            "private" => Visibility::Private,
            "shared" => Visibility::Shared,
            "community" => Visibility::Community,
            _ => return None,
        })
    }
}

pub const DISK_FORMATS: [&str; 10] = [
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
];
pub const CONTAINER_FORMATS: [&str; 7] = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker"];

#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: Status,
    pub visibility: Visibility,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub owner: String,
    pub properties: Map<String, Value>,
    pub tags: Vec<String>,
    pub location: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<MemberStatus> {
        Some(match s {
            "pending" => MemberStatus::Pending,
            "accepted" => MemberStatus::Accepted,
            "rejected" => MemberStatus::Rejected,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    pub status: MemberStatus,
    pub created_at: i64,
    pub updated_at: i64,
}
