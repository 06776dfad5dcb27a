//! The Glance v2 HTTP API: routes and thin handlers, one module per resource. A handler
//! parses the request, authorizes it (`find_for`, `auth.enforce`), calls the application
//! layer (`crate::app`) and renders the answer; the image list cache is invalidated by the
//! application layer's writes, not here.

mod data;
mod images;
mod info;
mod members;
pub(crate) mod wire;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;
use ferrostack_api::ErrorFormat;

use crate::ImageService;

pub type State = axum::extract::State<Arc<ImageService>>;

/// The image router, to be nested under `/image`.
pub fn router(svc: Arc<ImageService>) -> Router {
    let v2 = Router::new()
        .route("/images", get(images::list).post(images::create))
        .route(
            "/images/{image_id}",
            get(images::show)
                .patch(images::update)
                .delete(images::remove),
        )
        .route(
            "/images/{image_id}/file",
            get(data::download).put(data::upload),
        )
        .route("/images/{image_id}/stage", put(data::stage))
        .route("/images/{image_id}/tasks", get(images::tasks))
        .route("/images/{image_id}/import", post(data::import))
        .route(
            "/images/{image_id}/tags/{tag}",
            put(images::add_tag).delete(images::remove_tag),
        )
        .route(
            "/images/{image_id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/images/{image_id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/images/{image_id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/images/{image_id}/members/{member_id}",
            get(members::show)
                .put(members::update)
                .delete(members::remove),
        )
        .route("/info/import", get(info::import_info))
        .route("/info/stores", get(info::stores))
        .route("/schemas/image", get(info::schema_image))
        .route("/schemas/images", get(info::schema_images))
        .route("/schemas/member", get(info::schema_member))
        .route("/schemas/members", get(info::schema_members));
    Router::new()
        .nest("/v2", v2)
        .route("/", get(info::versions))
        .route("/versions", get(info::versions))
        .fallback(info::not_found)
        .with_state(svc)
        .layer(axum::middleware::from_fn(
            ferrostack_api::request::refuse_nul,
        ))
        .layer(ErrorFormat::Glance.layer())
}
