//! `/os-keypairs`: list, create (import, or generate before 2.92), show, delete.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::input;
use super::State;
use crate::app::keypairs::{KeyType, NewKeypair};
use crate::error::{ComputeError, Result};
use crate::model::Keypair;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-keypairs", get(index).post(create))
        .route("/os-keypairs/{name}", get(show).delete(remove))
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
    let all = svc.keypairs(&user).await?;
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
        None => KeyType::Ssh,
        Some(t) => match t.as_str() {
            Some("ssh") => KeyType::Ssh,
            Some("x509") => KeyType::X509,
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

    let created = svc
        .create_keypair(NewKeypair {
            user_id: user,
            project_id: auth.project_id().unwrap_or_default().to_string(),
            name,
            key_type,
            public_key,
        })
        .await?;
    let mut out = render(
        &created.keypair,
        v,
        &["name", "public_key", "fingerprint", "user_id"],
    );
    if let Some(p) = created.private_key {
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
    let k = svc.keypair(&user, &name).await?;
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
    svc.delete_keypair(&user, &name).await?;
    Ok(if v.at_least(2, 2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}
