//! Password and secret hashing: argon2id with a random salt, in PHC string form. Hashing and
//! verifying are CPU-heavy on purpose, so they run on the blocking pool.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::error::{IdentityError, Result};

/// Longest password accepted (Keystone's `max_password_length` default is 4096).
pub const MAX_PASSWORD_LEN: usize = 4096;

fn hash_blocking(secret: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Internal(format!("password hashing failed: {e}")))
}

fn verify_blocking(hash: &str, secret: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

pub async fn hash(secret: String) -> Result<String> {
    if secret.len() > MAX_PASSWORD_LEN {
        return Err(IdentityError::validation(format!(
            "Invalid input for field 'password': the password is longer than {MAX_PASSWORD_LEN} characters."
        )));
    }
    tokio::task::spawn_blocking(move || hash_blocking(&secret))
        .await
        .map_err(|e| IdentityError::Internal(e.to_string()))?
}

/// Verifies `secret` against `hash`. With no hash (unknown user, user without password) it
/// still spends the time of one verification, so a caller cannot tell the cases apart.
pub async fn verify(hash: Option<String>, secret: String) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY
        .get_or_init(|| hash_blocking("not a real password").unwrap_or_default())
        .clone();
    let known = hash.is_some();
    let h = hash.unwrap_or(dummy);
    let ok = tokio::task::spawn_blocking(move || verify_blocking(&h, &secret))
        .await
        .unwrap_or(false);
    ok && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash("s3cret".into()).await.unwrap();
        let b = hash("s3cret".into()).await.unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify(Some(a.clone()), "s3cret".into()).await);
        assert!(!verify(Some(a), "wrong".into()).await);
        assert!(!verify(None, "not a real password".into()).await);
        assert!(hash("x".repeat(MAX_PASSWORD_LEN + 1)).await.is_err());
    }
}
