//! The Keystone v3 HTTP API: routes, wire types and thin handlers, one module per resource.
//! Handlers parse, check policy, call the application layer (`crate::app`), and render wire
//! bodies; they never reach the database.

mod app_creds;
mod assignments;
mod auth;
mod catalog;
mod domains;
mod groups;
mod limits;
mod projects;
mod roles;
mod users;
mod versions;
pub(crate) mod wire;

use std::sync::Arc;

use axum::Router;
use ferrostack_api::ErrorFormat;

use crate::Identity;

pub type State = axum::extract::State<Arc<Identity>>;

/// The identity router, to be nested under `/identity`.
pub fn router(identity: Arc<Identity>) -> Router {
    let v3 = Router::new()
        .merge(auth::routes())
        .merge(domains::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
        .merge(catalog::routes())
        .merge(app_creds::routes())
        .merge(limits::routes())
        .merge(versions::v3_routes());
    Router::new()
        .nest("/v3", v3)
        .merge(versions::root_routes())
        .fallback(versions::fallback)
        .with_state(identity)
        .layer(axum::middleware::from_fn(
            ferrostack_api::request::refuse_nul,
        ))
        .layer(ErrorFormat::Keystone.layer())
}
