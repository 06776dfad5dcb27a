//! Token issue and validation.
//!
//! A token is a Fernet token in Keystone's layout (see `payload`). Validation decrypts it,
//! checks expiry and revocation events, then resolves the user, the scope and the roles from
//! the database. The result is cached by token string together with the identity generation
//! it was computed at: any identity change (role removed, user disabled, revocation) bumps the
//! generation, so a cached validation is valid exactly while the generation is unchanged. A
//! repeated validation is therefore one cache lookup and one expiry comparison.

pub mod keys;
pub mod payload;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ferrostack_api::AuthContext;
use parking_lot::RwLock;

use crate::model::RevocationEvent;
pub use payload::{Payload, Scope};

/// Why a token is not accepted (never shown in detail to the client).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("token cannot be decrypted")]
    Undecryptable,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
}

/// A token after decryption: its payload and its Fernet timestamp (the issue time).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub payload: Payload,
    pub issued_at: i64,
}

struct CachedToken {
    ctx: Arc<AuthContext>,
    generation: i64,
}

pub struct TokenProvider {
    keys: RwLock<Arc<keys::KeySet>>,
    repo: keys::KeyRepository,
    events: RwLock<Vec<RevocationEvent>>,
    generation: AtomicI64,
    cache: moka::sync::Cache<String, Arc<CachedToken>>,
    pub expiration: Duration,
}

impl TokenProvider {
    pub fn new(repo: keys::KeyRepository, expiration: Duration) -> Result<Self, keys::KeyError> {
        repo.setup()?;
        let set = repo.load()?;
        Ok(TokenProvider {
            keys: RwLock::new(Arc::new(set)),
            repo,
            events: RwLock::new(Vec::new()),
            generation: AtomicI64::new(0),
            cache: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            expiration,
        })
    }

    /// Re-reads the key repository (after `ferrostack fernet rotate` on this or another node).
    pub fn reload_keys(&self) -> Result<(), keys::KeyError> {
        let set = self.repo.load()?;
        *self.keys.write() = Arc::new(set);
        Ok(())
    }

    pub fn generation(&self) -> i64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a newer identity generation: every cached validation older than it is dropped.
    pub fn set_generation(&self, g: i64) {
        self.generation.fetch_max(g, Ordering::AcqRel);
    }

    /// Adds revocation events (newly written, or polled from the database).
    pub fn add_events(&self, evs: Vec<RevocationEvent>) {
        if !evs.is_empty() {
            self.events.write().extend(evs);
        }
    }

    /// Time of the newest known revocation event (for incremental polling).
    pub fn newest_event(&self) -> i64 {
        self.events
            .read()
            .iter()
            .map(|e| e.revoked_at)
            .max()
            .unwrap_or(0)
    }

    /// Drops events that can no longer match a live token.
    pub fn prune_events(&self, before: i64) {
        self.events.write().retain(|e| e.issued_before >= before);
    }

    /// Issues a token for `payload`. Its Fernet timestamp is the issue time; it is moved past
    /// any revocation event that would otherwise match it within the same second, so a token
    /// issued just after a revocation (e.g. after a password change) stays valid.
    pub fn encrypt(&self, payload: &Payload) -> (String, i64) {
        let now = ferrostack_store::now_micros();
        let mut ts = now / 1_000_000;
        let probe = Decoded {
            payload: payload.clone(),
            issued_at: ts * 1_000_000,
        };
        if self.is_revoked(&probe) {
            ts += 1;
        }
        let keys = self.keys.read().clone();
        let primary = &keys.keys[0];
        let token = primary.encrypt_at_time(&payload.to_msgpack(), u64::try_from(ts).unwrap_or(0));
        (token.trim_end_matches('=').to_string(), ts * 1_000_000)
    }

    /// Decrypts a token and checks expiry and revocation.
    pub fn decode(&self, token: &str) -> Result<Decoded, TokenError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| TokenError::Undecryptable)?;
        if raw.len() < 9 || raw[0] != 0x80 {
            return Err(TokenError::Undecryptable);
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[1..9]);
        let issued_at = i64::try_from(u64::from_be_bytes(ts))
            .map_err(|_| TokenError::Undecryptable)?
            * 1_000_000;
        let keys = self.keys.read().clone();
        let plain = keys
            .keys
            .iter()
            .find_map(|k| k.decrypt(token).ok())
            .ok_or(TokenError::Undecryptable)?;
        let payload = Payload::from_msgpack(&plain).map_err(|_| TokenError::Undecryptable)?;
        let now = ferrostack_store::now_micros() as f64 / 1e6;
        if payload.expires_at <= now {
            return Err(TokenError::Expired);
        }
        let d = Decoded { payload, issued_at };
        if self.is_revoked(&d) {
            return Err(TokenError::Revoked);
        }
        Ok(d)
    }

    fn is_revoked(&self, d: &Decoded) -> bool {
        let events = self.events.read();
        events.iter().any(|e| {
            d.issued_at <= e.issued_before
                && (e.user_id.is_empty() || e.user_id == d.payload.user_id)
                && (e.audit_id.is_empty() || d.payload.audit_ids.contains(&e.audit_id))
                && (e.project_id.is_empty() || matches!(&d.payload.scope,
                    Scope::Project(p) | Scope::ApplicationCredential { project_id: p, .. } if *p == e.project_id))
                && (e.domain_id.is_empty() || matches!(&d.payload.scope, Scope::Domain(x) if *x == e.domain_id))
        })
    }

    /// A cached validation still good at the current generation and not expired.
    pub fn cached(&self, token: &str) -> Option<Arc<AuthContext>> {
        let c = self.cache.get(token)?;
        if c.generation == self.generation() && c.ctx.expires_at > chrono::Utc::now() {
            Some(c.ctx.clone())
        } else {
            None
        }
    }

    pub fn remember(&self, token: &str, ctx: Arc<AuthContext>, generation: i64) {
        self.cache
            .insert(token.to_string(), Arc::new(CachedToken { ctx, generation }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> (tempfile::TempDir, TokenProvider) {
        let dir = tempfile::tempdir().unwrap();
        let repo = keys::KeyRepository::new(dir.path().join("k"), 3);
        let p = TokenProvider::new(repo, Duration::from_secs(3600)).unwrap();
        (dir, p)
    }

    fn payload(expires_in: f64) -> Payload {
        Payload {
            user_id: "u1".into(),
            methods: vec!["password".into()],
            scope: Scope::Project("p1".into()),
            expires_at: ferrostack_store::now_micros() as f64 / 1e6 + expires_in,
            audit_ids: vec![payload::new_audit_id()],
        }
    }

    #[test]
    fn issue_and_decode() {
        let (_d, p) = provider();
        let (tok, _) = p.encrypt(&payload(60.0));
        assert!(!tok.ends_with('='));
        assert!(
            tok.len() < 255,
            "fits in an HTTP header like Keystone's tokens"
        );
        let d = p.decode(&tok).unwrap();
        assert_eq!(d.payload.user_id, "u1");
    }

    #[test]
    fn expired_tampered_and_revoked_tokens_fail() {
        let (_d, p) = provider();
        let (tok, _) = p.encrypt(&payload(-1.0));
        assert_eq!(p.decode(&tok).unwrap_err(), TokenError::Expired);
        let (tok, issued) = p.encrypt(&payload(60.0));
        let mut bad = tok.clone().into_bytes();
        let i = bad.len() / 2;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            p.decode(std::str::from_utf8(&bad).unwrap()).unwrap_err(),
            TokenError::Undecryptable
        );
        p.add_events(vec![RevocationEvent {
            user_id: "u1".into(),
            issued_before: issued + 10,
            revoked_at: issued + 10,
            ..Default::default()
        }]);
        assert_eq!(p.decode(&tok).unwrap_err(), TokenError::Revoked);
        // A token issued after the revocation, even within the same second, is valid.
        let (tok2, _) = p.encrypt(&payload(60.0));
        assert!(p.decode(&tok2).is_ok());
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let (_d, p) = provider();
        let (tok, _) = p.encrypt(&payload(60.0));
        p.repo.rotate().unwrap();
        p.reload_keys().unwrap();
        assert!(p.decode(&tok).is_ok());
    }
}
