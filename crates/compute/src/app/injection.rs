//! Nova's personality files and admin password: checked against the project's
//! `injected_file*` quotas, sealed (Fernet, the compute service's own key) into
//! `instance_injections` for the create or rebuild that asked for them, given to the host
//! with the guest's spec while that operation is under way (the QEMU driver writes them
//! into the config drive), and dropped once the guest is built. Never stored or logged in
//! clear.

use ferrostack_agent_api::{Injected, InjectedFile};

use crate::db;
use crate::error::{ComputeError, Result};
use crate::ComputeService;

/// Seals and opens injections with the compute service's key.
pub struct Sealer(fernet::Fernet);

impl Sealer {
    /// `key`: a Fernet key (URL-safe base64 of 32 bytes); None makes a new one for this process
    /// only (tests: injections sealed by another process cannot be opened).
    pub fn new(key: Option<&str>) -> std::result::Result<Sealer, String> {
        match key {
            None => Ok(Sealer::of_this_process()),
            Some(k) => fernet::Fernet::new(k.trim())
                .map(Sealer)
                .ok_or_else(|| "the injection key is not a Fernet key".to_string()),
        }
    }

    /// A sealer with a new key, known to this process only.
    #[expect(
        clippy::expect_used,
        reason = "a key Fernet generated itself is always a valid Fernet key"
    )]
    pub fn of_this_process() -> Sealer {
        Sealer(fernet::Fernet::new(&fernet::Fernet::generate_key()).expect("a new Fernet key"))
    }

    fn seal(&self, injected: &Injected) -> Result<String> {
        let json = serde_json::to_vec(injected)
            .map_err(|e| ComputeError::io("encoding an injection")(std::io::Error::other(e)))?;
        Ok(self.0.encrypt(&json))
    }

    /// None when it cannot be opened (sealed with another key): the guest is built without.
    fn open(&self, sealed: &str) -> Option<Injected> {
        let json = self.0.decrypt(sealed).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// Checks `files` against the project's quotas (Nova's OnsetFile*LimitExceeded, 403).
pub async fn check_quota(conn: &mut db::Conn, project: &str, files: &[InjectedFile]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let limits = db::quotas::limits_for(conn, project, "").await?;
    let over = |limit: i64, n: usize| limit >= 0 && i64::try_from(n).unwrap_or(i64::MAX) > limit;
    if over(limits.limit("injected_files"), files.len()) {
        return Err(ComputeError::QuotaExceeded(
            "Personality file limit exceeded".into(),
        ));
    }
    let path_limit = limits.limit("injected_file_path_bytes");
    let content_limit = limits.limit("injected_file_content_bytes");
    for f in files {
        if over(path_limit, f.path.len()) {
            return Err(ComputeError::QuotaExceeded(format!(
                "Personality file path exceeds maximum {path_limit}"
            )));
        }
        if over(content_limit, decoded_len(&f.contents)) {
            return Err(ComputeError::QuotaExceeded(format!(
                "Personality file content exceeds maximum {content_limit}"
            )));
        }
    }
    Ok(())
}

/// The decoded size of base64 `b64` (checked as base64 by the API).
fn decoded_len(b64: &str) -> usize {
    let t = b64.trim();
    (t.len() / 4) * 3 - t.bytes().rev().take_while(|b| *b == b'=').count()
}

impl ComputeService {
    /// Records what `instance_uuid`'s operation at `generation` injects. Nothing is kept when
    /// there is nothing to inject or the guest has no config drive (the one way it reaches
    /// the guest, as with Nova's libvirt driver, which injects nothing into disks).
    pub(crate) async fn record_injection(
        &self,
        conn: &mut db::Conn,
        instance: &crate::instance::Instance,
        generation: i64,
        injected: &Injected,
        now: i64,
    ) -> Result<()> {
        let instance_uuid = instance.uuid.as_str();
        if instance.config_drive.is_empty()
            || (injected.files.is_empty() && injected.admin_pass.is_none())
        {
            return Ok(db::instance_injections::drop_up_to(conn, instance_uuid, i64::MAX).await?);
        }
        let sealed = self.sealer.seal(injected)?;
        db::instance_injections::put(conn, instance_uuid, generation, &sealed, now).await?;
        Ok(())
    }

    /// The open injections of the instances on `host`, by instance, for the operation at the
    /// generation each was made for.
    pub(crate) async fn injections_on(
        &self,
        conn: &mut db::Conn,
        host: &str,
    ) -> Result<std::collections::HashMap<String, (i64, Injected)>> {
        let mut out = std::collections::HashMap::new();
        for (uuid, generation, sealed) in db::instance_injections::on_host(conn, host).await? {
            match self.sealer.open(&sealed) {
                Some(i) => {
                    out.insert(uuid, (generation, i));
                }
                None => tracing::warn!(
                    instance = %uuid,
                    "an injection sealed with another key (another controller's?) cannot be opened; the guest is built without it"
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_injections_open_only_with_their_key() {
        let a = Sealer::new(None).unwrap();
        let b = Sealer::new(None).unwrap();
        let i = Injected {
            files: vec![InjectedFile {
                path: "/etc/motd".into(),
                contents: "aGVsbG8=".into(),
            }],
            admin_pass: Some("pw-123".into()),
        };
        let sealed = a.seal(&i).unwrap();
        assert!(!sealed.contains("pw-123"));
        assert_eq!(a.open(&sealed), Some(i));
        assert_eq!(b.open(&sealed), None);
        assert!(Sealer::new(Some("not a key")).is_err());
    }

    #[test]
    fn decoded_lengths() {
        assert_eq!(decoded_len("aGVsbG8="), 5);
        assert_eq!(decoded_len("aGk="), 2);
        assert_eq!(decoded_len("YWJj"), 3);
        assert_eq!(decoded_len(""), 0);
    }
}
