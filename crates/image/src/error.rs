//! Errors of the image service and their one mapping to Glance's status codes.

use ferrostack_api::ApiError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No image found with ID {0}")]
    NotFound(String),
    #[error("{0}")]
    NotFoundMsg(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("database error")]
    Db(#[from] ferrostack_store::sqlx::Error),
    #[error("store error")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Api(ApiError),
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl From<ApiError> for ImageError {
    fn from(e: ApiError) -> Self {
        ImageError::Api(e)
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> ApiError {
        let status = match &e {
            ImageError::NotFound(_) | ImageError::NotFoundMsg(_) => StatusCode::NOT_FOUND,
            ImageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ImageError::Forbidden(_) => StatusCode::FORBIDDEN,
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ImageError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ImageError::Db(err) => return ApiError::internal(format!("database: {err}")),
            ImageError::Store(err) => return ApiError::internal(format!("image store: {err:?}")),
            ImageError::Api(inner) => return inner.clone(),
        };
        ApiError::new(status, e.to_string())
    }
}

impl axum::response::IntoResponse for ImageError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}
