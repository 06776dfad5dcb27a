//! Images as a host needs them: enough to fetch, check and boot one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An image of the image service, as the controller tells a host about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: String,
    /// Glance's status; only `active` images have data to fetch.
    pub status: String,
    pub disk_format: Option<String>,
    pub size: Option<i64>,
    /// Glance's multihash (`sha512` unless configured otherwise) and its value, which a host
    /// checks the data it downloaded against.
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    /// The legacy MD5 checksum, checked when there is no multihash.
    pub checksum: Option<String>,
    /// The image's additional properties (`kernel_id`, `ramdisk_id`, `os_command_line`,
    /// `hw_*`).
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl ImageInfo {
    /// A string property, when set and not empty.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}
