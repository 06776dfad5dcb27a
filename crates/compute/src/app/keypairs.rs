//! Key pairs of users: import (with Nova's fingerprints), generation (SSH or X.509), the
//! `key_pairs` quota, listing, lookup and deletion.

use base64::Engine as _;
use md5::Digest as _;

use crate::db;
use crate::error::{ComputeError, Result};
use crate::model::Keypair;
use crate::ComputeService;

/// The kinds of key pair Nova keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ssh,
    X509,
}

impl KeyType {
    /// The name Nova stores and shows (`type`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ssh => "ssh",
            KeyType::X509 => "x509",
        }
    }
}

/// A key pair to create for `user_id`.
#[derive(Debug, Clone)]
pub struct NewKeypair {
    pub user_id: String,
    /// The caller's project: whose `key_pairs` quota applies, and part of a generated
    /// certificate's subject.
    pub project_id: String,
    pub name: String,
    pub key_type: KeyType,
    /// The public key (or certificate) to import; `None` generates a pair.
    pub public_key: Option<String>,
}

/// A created key pair, with the private key when it was generated (shown once, never
/// stored).
#[derive(Debug, Clone)]
pub struct CreatedKeypair {
    pub keypair: Keypair,
    pub private_key: Option<String>,
}

/// Nova's 404 for a key pair.
pub fn not_found(name: &str, user_id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Keypair {name} not found for user {user_id}"))
}

fn invalid_keypair(reason: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Keypair data is invalid: {reason}"))
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Nova's SSH fingerprint: the MD5 of the decoded key blob, colon-separated hex. The key must
/// parse as an OpenSSH public key.
pub fn ssh_fingerprint(public_key: &str) -> Result<String> {
    let fail = || invalid_keypair("failed to generate fingerprint");
    let key = public_key.trim();
    ssh_key::PublicKey::from_openssh(key).map_err(|_| fail())?;
    let blob = key.split_whitespace().nth(1).ok_or_else(fail)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| fail())?;
    Ok(colon_hex(&md5::Md5::digest(&raw)))
}

/// A self-signed certificate for `user` and its private key, both PEM, as Nova's x509
/// generation gives (Nova's key is RSA; this one is ECDSA P-256, which ring can generate).
fn generate_x509(user: &str, project: &str) -> Result<(String, String)> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{user}-{project}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "ferrostack");
    let key = rcgen::KeyPair::generate().map_err(|e| {
        ComputeError::Api(ferrostack_api::ApiError::internal(format!(
            "key generation failed: {e}"
        )))
    })?;
    let cert = params.self_signed(&key).map_err(|e| {
        ComputeError::Api(ferrostack_api::ApiError::internal(format!(
            "certificate generation failed: {e}"
        )))
    })?;
    Ok((key.serialize_pem(), cert.pem()))
}

/// Nova's X.509 fingerprint: the SHA-1 of the certificate's DER, colon-separated hex.
pub fn x509_fingerprint(pem: &str) -> Result<String> {
    let fail = || {
        invalid_keypair(
            "failed to generate X509 fingerprint. Error message: Unable to load certificate",
        )
    };
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE-----")
        .and_then(|s| s.split("-----END CERTIFICATE-----").next())
        .ok_or_else(fail)?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| fail())?;
    // A certificate is a DER SEQUENCE.
    if der.len() < 2 || der[0] != 0x30 {
        return Err(fail());
    }
    Ok(colon_hex(&sha1::Sha1::digest(&der)))
}

/// A new key pair: (OpenSSH private key, public key line). Ed25519: as strong as Nova's RSA
/// 2048 and instant to generate.
fn generate_ssh() -> Result<(String, String)> {
    let err = |e: ssh_key::Error| ComputeError::Api(ferrostack_api::ApiError::internal(e));
    let mut key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(err)?;
    key.set_comment("Generated-by-Nova");
    let private = key.to_openssh(ssh_key::LineEnding::LF).map_err(err)?;
    let public = key.public_key().to_openssh().map_err(err)?;
    Ok((private.to_string(), public))
}

impl ComputeService {
    /// The key pairs of `user_id`, by name.
    pub async fn keypairs(&self, user_id: &str) -> Result<Vec<Keypair>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::keypairs::list(&mut conn, user_id).await?)
    }

    /// The key pair `name` of `user_id`, or Nova's 404.
    pub async fn keypair(&self, user_id: &str, name: &str) -> Result<Keypair> {
        let mut conn = self.db.pool.acquire().await?;
        db::keypairs::get(&mut conn, user_id, name)
            .await?
            .ok_or_else(|| not_found(name, user_id))
    }

    /// Imports or generates a key pair: 400 for a key that does not parse, 403 over the
    /// user's `key_pairs` quota (the user's limit in the project, else the project's), 409
    /// for a name the user already has. The count and the insert share one write
    /// transaction, so concurrent creates cannot pass the quota together.
    pub async fn create_keypair(&self, new: NewKeypair) -> Result<CreatedKeypair> {
        let (public_key, private_key) = match new.public_key {
            Some(p) => (p, None),
            None if new.key_type == KeyType::X509 => {
                let (private, cert) = generate_x509(&new.user_id, &new.project_id)?;
                (cert, Some(private))
            }
            None => {
                let (private, public) = generate_ssh()?;
                (public, Some(private))
            }
        };
        let fingerprint = match new.key_type {
            KeyType::X509 => x509_fingerprint(&public_key)?,
            KeyType::Ssh => ssh_fingerprint(&public_key)?,
        };
        let mut keypair = Keypair {
            id: 0,
            user_id: new.user_id,
            name: new.name,
            key_type: new.key_type.as_str().to_string(),
            public_key,
            fingerprint,
            created_at: ferrostack_store::now_micros(),
        };
        let (user, name) = (&keypair.user_id, &keypair.name);
        let mut tx = self.db.begin_write().await?;
        let limits = db::quotas::limits_for(&mut tx, &new.project_id, user).await?;
        let allowed = limits
            .user
            .get("key_pairs")
            .copied()
            .unwrap_or(limits.limit("key_pairs"));
        if allowed >= 0 && db::keypairs::count(&mut tx, user).await? + 1 > allowed {
            return Err(ComputeError::QuotaExceeded(
                "Quota exceeded, too many key pairs.".into(),
            ));
        }
        if db::keypairs::get(&mut tx, user, name).await?.is_some() {
            return Err(ComputeError::Conflict(format!(
                "Key pair '{name}' already exists."
            )));
        }
        keypair.id = db::keypairs::insert(&mut tx, &keypair).await?;
        tx.commit().await?;
        Ok(CreatedKeypair {
            keypair,
            private_key,
        })
    }

    /// Deletes the key pair `name` of `user_id`; Nova's 404 when there is none.
    pub async fn delete_keypair(&self, user_id: &str, name: &str) -> Result<()> {
        let mut conn = self.db.writer.acquire().await?;
        if !db::keypairs::delete(&mut conn, user_id, name).await? {
            return Err(not_found(name, user_id));
        }
        Ok(())
    }
}
