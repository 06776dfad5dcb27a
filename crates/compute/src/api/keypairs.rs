//! `/os-keypairs`: list, create (import, or generate before 2.92), show, delete.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use http::StatusCode;
use md5::Digest as _;
use serde_json::{json, Map, Value};

use super::input;
use super::State;
use crate::db;
use crate::error::{ComputeError, Result};
use crate::model::Keypair;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-keypairs", get(index).post(create))
        .route("/os-keypairs/{name}", get(show).delete(remove))
}

fn invalid_keypair(reason: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Keypair data is invalid: {reason}"))
}

fn not_found(name: &str, user_id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Keypair {name} not found for user {user_id}"))
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

/// Nova's X.509 fingerprint: the SHA-1 of the certificate's DER, colon-separated hex.
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
fn generate() -> Result<(String, String)> {
    let err = |e: ssh_key::Error| ComputeError::Api(ferrostack_api::ApiError::internal(e));
    let mut key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(err)?;
    key.set_comment("Generated-by-Nova");
    let private = key.to_openssh(ssh_key::LineEnding::LF).map_err(err)?;
    let public = key.public_key().to_openssh().map_err(err)?;
    Ok((private.to_string(), public))
}

/// Nova's key pair name pattern at this microversion.
fn check_name(v: Microversion, value: &Value) -> Result<String> {
    let name = input::name("name", value)?;
    let (extra, pattern) = if v.at_least(2, 92) {
        ("_-@. ", r"^[_\-\@\. a-zA-Z0-9]+$")
    } else {
        ("_- ", r"^[_\- a-zA-Z0-9]+$")
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    {
        return Err(input::invalid(
            "name",
            value,
            format!("{} does not match '{pattern}'", input::repr(value)),
        ));
    }
    Ok(name.to_string())
}

/// The user whose key pairs are addressed: `user_id` (query or body, from 2.10) or the
/// caller. The policy decides whether the caller may act for another user.
fn target_user(auth: &Auth, v: Microversion, given: Option<&str>) -> String {
    match given {
        Some(u) if v.at_least(2, 10) => u.to_string(),
        _ => auth.user_id.clone(),
    }
}

fn query_user(
    v: Microversion,
    pairs: &[(String, String)],
    extra: &[&str],
) -> Result<Option<String>> {
    if v.at_least(2, 75) {
        let mut allowed = vec!["user_id"];
        allowed.extend_from_slice(extra);
        input::only_query_params(pairs, &allowed)?;
    }
    Ok(input::query_get(pairs, "user_id").map(str::to_string))
}

fn render(k: &Keypair, v: Microversion, fields: &[&str]) -> Value {
    let mut o = Map::new();
    for f in fields {
        let val = match *f {
            "name" => json!(k.name),
            "public_key" => json!(k.public_key),
            "fingerprint" => json!(k.fingerprint),
            "user_id" => json!(k.user_id),
            "created_at" => json!(input::nova_time(k.created_at)),
            "deleted" => json!(false),
            "deleted_at" | "updated_at" => Value::Null,
            "id" => json!(k.id),
            _ => continue,
        };
        o.insert((*f).to_string(), val);
    }
    if v.at_least(2, 2) {
        o.insert("type".into(), json!(k.key_type));
    }
    Value::Object(o)
}

pub async fn index(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let pairs = input::query_pairs(q.as_deref());
    let extra: &[&str] = if v.at_least(2, 35) {
        &["limit", "marker"]
    } else {
        &[]
    };
    let user = target_user(&auth, v, query_user(v, &pairs, extra)?.as_deref());
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-keypairs:index",
        &json!({"user_id": user}),
    )?;
    let (limit, marker) = if v.at_least(2, 35) {
        input::limit_marker(&pairs)?
    } else {
        (None, None)
    };
    let mut conn = svc.db.pool.acquire().await?;
    let all = db::keypairs::list(&mut conn, &user).await?;
    let start = match &marker {
        None => 0,
        Some(m) => {
            all.iter().position(|k| &k.name == m).ok_or_else(|| {
                ComputeError::BadRequest(format!("Marker {m} could not be found."))
            })? + 1
        }
    };
    let limit_n = limit.unwrap_or(1000);
    let page: Vec<&Keypair> = all.iter().skip(start).take(limit_n).collect();
    let fields = ["name", "public_key", "fingerprint"];
    let mut body = json!({
        "keypairs": page.iter().map(|k| json!({"keypair": render(k, v, &fields)})).collect::<Vec<_>>()
    });
    if v.at_least(2, 35) && limit_n > 0 && page.len() == limit_n {
        if let Some(last) = page.last() {
            let mut href = format!(
                "{}/compute/v2.1/os-keypairs?limit={limit_n}&marker={}",
                svc.config.public_url, last.name
            );
            if user != auth.user_id {
                href.push_str(&format!("&user_id={user}"));
            }
            body["keypairs_links"] = json!([{"rel": "next", "href": href}]);
        }
    }
    Ok(axum::Json(body).into_response())
}

pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    let mut allowed = vec!["name", "public_key"];
    if v.at_least(2, 2) {
        allowed.push("type");
    }
    if v.at_least(2, 10) {
        allowed.push("user_id");
    }
    let required: &[&str] = if v.at_least(2, 92) {
        &["name", "public_key"]
    } else {
        &["name"]
    };
    let o = input::envelope(&body, "keypair", &allowed, required)?;
    let name = check_name(v, &o["name"])?;
    let key_type = match o.get("type") {
        None => "ssh".to_string(),
        Some(t) => match t.as_str() {
            Some(s @ ("ssh" | "x509")) => s.to_string(),
            _ => {
                return Err(input::invalid(
                    "type",
                    t,
                    format!("{} is not one of ['ssh', 'x509']", input::repr(t)),
                ))
            }
        },
    };
    let given_user = match o.get("user_id") {
        None => None,
        Some(u) => Some(input::string("user_id", u, 0, usize::MAX)?.to_string()),
    };
    let public_key = match o.get("public_key") {
        None => None,
        Some(p) => Some(input::string("public_key", p, 0, usize::MAX)?.to_string()),
    };
    let user = target_user(&auth, v, given_user.as_deref());
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-keypairs:create",
        &json!({"user_id": user}),
    )?;

    let (public_key, private_key) = match public_key {
        Some(p) => (p, None),
        None if key_type == "x509" => {
            let (private, cert) = generate_x509(&user, auth.project_id().unwrap_or_default())?;
            (cert, Some(private))
        }
        None => {
            let (private, public) = generate()?;
            (public, Some(private))
        }
    };
    let fingerprint = if key_type == "x509" {
        x509_fingerprint(&public_key)?
    } else {
        ssh_fingerprint(&public_key)?
    };
    let mut keypair = Keypair {
        id: 0,
        user_id: user.clone(),
        name: name.clone(),
        key_type,
        public_key,
        fingerprint,
        created_at: ferrostack_store::now_micros(),
    };
    let project = auth.project_id().unwrap_or_default().to_string();
    let limits = {
        let mut conn = svc.db.pool.acquire().await?;
        db::quotas::limits_for(&mut conn, &project, &user).await?
    };
    let mut tx = svc.db.begin_write().await?;
    let allowed_n = limits
        .user
        .get("key_pairs")
        .copied()
        .unwrap_or(limits.limit("key_pairs"));
    if allowed_n >= 0 && db::keypairs::count(&mut tx, &user).await? + 1 > allowed_n {
        return Err(ComputeError::QuotaExceeded(
            "Quota exceeded, too many key pairs.".into(),
        ));
    }
    if db::keypairs::get(&mut tx, &user, &name).await?.is_some() {
        return Err(ComputeError::Conflict(format!(
            "Key pair '{name}' already exists."
        )));
    }
    keypair.id = db::keypairs::insert(&mut tx, &keypair).await?;
    tx.commit().await?;

    let mut out = render(
        &keypair,
        v,
        &["name", "public_key", "fingerprint", "user_id"],
    );
    if let Some(p) = private_key {
        out["private_key"] = json!(p);
    }
    let status = if v.at_least(2, 2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({ "keypair": out }))).into_response())
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let pairs = input::query_pairs(q.as_deref());
    let user = target_user(&auth, v, query_user(v, &pairs, &[])?.as_deref());
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-keypairs:show",
        &json!({"user_id": user}),
    )?;
    let mut conn = svc.db.pool.acquire().await?;
    let k = db::keypairs::get(&mut conn, &user, &name)
        .await?
        .ok_or_else(|| not_found(&name, &user))?;
    let fields = [
        "name",
        "public_key",
        "fingerprint",
        "user_id",
        "created_at",
        "deleted",
        "deleted_at",
        "id",
        "updated_at",
    ];
    Ok(axum::Json(json!({"keypair": render(&k, v, &fields)})).into_response())
}

pub async fn remove(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode> {
    let svc = &state.0;
    let pairs = input::query_pairs(q.as_deref());
    let user = target_user(&auth, v, query_user(v, &pairs, &[])?.as_deref());
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-keypairs:delete",
        &json!({"user_id": user}),
    )?;
    let mut conn = svc.db.writer.acquire().await?;
    if !db::keypairs::delete(&mut conn, &user, &name).await? {
        return Err(not_found(&name, &user));
    }
    Ok(if v.at_least(2, 2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}
