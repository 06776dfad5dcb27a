//! `/v2.0/subnetpools`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, query, wire, State};
use crate::app::subnetpools::{subnetpool_not_found, NewSubnetPool, SubnetPoolChanges};
use crate::error::{NetworkError, Result};
use crate::model::SubnetPool;
use crate::NetworkService;

fn target(p: &SubnetPool) -> Value {
    wire::subnetpool(p)
}

fn prefixlen(obj: &Obj, key: &str) -> Result<Option<u8>> {
    match input::integer(obj, key)? {
        None => Ok(None),
        Some(n) => u8::try_from(n)
            .ok()
            .filter(|n| *n <= 128)
            .map(Some)
            .ok_or_else(|| {
                NetworkError::invalid_attr(key, format!("'{n}' is not a valid prefix length"))
            }),
    }
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "subnetpool", "subnetpools")?;
    let mut out = Vec::new();
    for obj in &objs {
        input::only(
            obj,
            &[
                "name",
                "description",
                "prefixes",
                "default_prefixlen",
                "min_prefixlen",
                "max_prefixlen",
                "shared",
                "is_default",
                "default_quota",
                "address_scope_id",
                "project_id",
                "tenant_id",
            ],
        )?;
        let project = crate::app::owner_for(&auth, input::project(obj)?.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project});
        authorize(svc, &auth, "create_subnetpool", &t)?;
        authorize_attrs(
            svc,
            &auth,
            "create_subnetpool",
            obj,
            &t,
            &[("shared", json!(false)), ("is_default", json!(false))],
        )?;
        if !matches!(obj.get("address_scope_id"), None | Some(Value::Null)) {
            return Err(NetworkError::bad_request(
                "BadRequest",
                "Address scopes are not available.",
            ));
        }
        let req = NewSubnetPool {
            project_id: Some(project),
            name: input::string(obj, "name", 255)?.unwrap_or_default(),
            description: input::string(obj, "description", 255)?.unwrap_or_default(),
            prefixes: input::prefixes(obj, "prefixes")?
                .ok_or_else(|| NetworkError::invalid_attr("prefixes", "'prefixes' is required"))?,
            default_prefixlen: prefixlen(obj, "default_prefixlen")?,
            min_prefixlen: prefixlen(obj, "min_prefixlen")?,
            max_prefixlen: prefixlen(obj, "max_prefixlen")?,
            shared: input::boolean(obj, "shared")?.unwrap_or(false),
            is_default: input::boolean(obj, "is_default")?.unwrap_or(false),
            default_quota: input::integer(obj, "default_quota")?,
        };
        let p = svc.create_subnetpool(&auth, req).await?;
        out.push(wire::subnetpool(&p));
    }
    Ok(created("subnetpool", "subnetpools", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_subnetpools(&auth)
        .await?
        .iter()
        .map(target)
        .filter(|t| svc.policy.enforce("get_subnetpool", t, &creds))
        .collect();
    Ok(
        axum::Json(lq.render(items, "subnetpools", &collection_url(svc, "subnetpools"))?)
            .into_response(),
    )
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<SubnetPool> {
    let p = svc.find_subnetpool(id, auth).await?;
    if !svc
        .policy
        .enforce("get_subnetpool", &target(&p), &auth.credentials())
    {
        return Err(subnetpool_not_found(id));
    }
    Ok(p)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let p = readable(svc, &auth, &id).await?;
    let v = query::project(wire::subnetpool(&p), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "subnetpool": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "subnetpool")?;
    input::only(
        &obj,
        &[
            "name",
            "description",
            "prefixes",
            "default_prefixlen",
            "min_prefixlen",
            "max_prefixlen",
            "is_default",
            "default_quota",
        ],
    )?;
    let p = readable(svc, &auth, &id).await?;
    let t = target(&p);
    authorize(svc, &auth, "update_subnetpool", &t)?;
    authorize_attrs(svc, &auth, "update_subnetpool", &obj, &t, &[])?;
    let changes = SubnetPoolChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
        prefixes: input::prefixes(&obj, "prefixes")?,
        default_prefixlen: prefixlen(&obj, "default_prefixlen")?,
        min_prefixlen: prefixlen(&obj, "min_prefixlen")?,
        max_prefixlen: prefixlen(&obj, "max_prefixlen")?,
        is_default: input::boolean(&obj, "is_default")?,
        default_quota: obj
            .contains_key("default_quota")
            .then(|| input::integer(&obj, "default_quota"))
            .transpose()?,
    };
    let p = svc
        .update_subnetpool(&id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "subnetpool": wire::subnetpool(&p) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let p = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_subnetpool", &target(&p))?;
    svc.delete_subnetpool(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
