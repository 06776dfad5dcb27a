//! Errors of the compute service and their one mapping to Nova's status codes (the Nova error
//! body itself is rendered by `ErrorFormat::Nova`).

use ferrostack_api::ApiError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    /// Nova answers quota excess with 403 and a message naming the resource.
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("database error")]
    Db(#[from] ferrostack_store::sqlx::Error),
    #[error("placement: {0}")]
    Placement(#[from] ferrostack_placement::PlacementError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Api(ApiError),
}

impl ComputeError {
    /// An I/O failure of the controller itself (500), `what` saying what it was doing.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ComputeError {
        let what = what.into();
        move |source| ComputeError::Io { what, source }
    }
}

pub type Result<T, E = ComputeError> = std::result::Result<T, E>;

impl From<ApiError> for ComputeError {
    fn from(e: ApiError) -> Self {
        ComputeError::Api(e)
    }
}

impl From<ComputeError> for ApiError {
    fn from(e: ComputeError) -> ApiError {
        let status = match &e {
            ComputeError::NotFound(_) => StatusCode::NOT_FOUND,
            ComputeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ComputeError::Forbidden(_) | ComputeError::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            ComputeError::Conflict(_) => StatusCode::CONFLICT,
            ComputeError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ComputeError::Db(err) => return ApiError::internal(format!("database: {err}")),
            ComputeError::Placement(err) => return ApiError::internal(format!("{err:?}")),
            ComputeError::Io { .. } => return ApiError::internal(e.to_string()),
            ComputeError::Api(inner) => return inner.clone(),
        };
        ApiError::new(status, e.to_string())
    }
}

impl axum::response::IntoResponse for ComputeError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}
