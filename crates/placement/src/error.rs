//! Errors of the placement service and their one mapping to HTTP statuses and placement's
//! error codes (`placement.concurrent_update`, ...; microversion 1.23).

use axum::response::{IntoResponse, Response};
use ferrostack_api::error::ErrorCode;
use ferrostack_api::ApiError;
use http::StatusCode;

/// Placement's error codes (placement/errors.py).
pub mod codes {
    pub const CONCURRENT_UPDATE: &str = "placement.concurrent_update";
    pub const INVENTORY_INUSE: &str = "placement.inventory.inuse";
    pub const DUPLICATE_NAME: &str = "placement.duplicate_name";
    pub const PROVIDER_IN_USE: &str = "placement.resource_provider.inuse";
    pub const PROVIDER_CANNOT_DELETE_PARENT: &str =
        "placement.resource_provider.cannot_delete_parent";
    pub const QUERYPARAM_BAD_VALUE: &str = "placement.query.bad_value";
    pub const QUERYPARAM_MISSING_VALUE: &str = "placement.query.missing_value";
    pub const ILLEGAL_DUPLICATE_QUERYPARAM: &str = "placement.query.duplicate_key";
}

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// A claim or write lost a race or would exceed capacity (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// A 409 (or 400) with one of placement's error codes ([`codes`]).
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A method the requested microversion does not have (HTTP 405).
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("database error")]
    Db(#[from] ferrostack_store::sqlx::Error),
}

pub type Result<T, E = PlacementError> = std::result::Result<T, E>;

impl PlacementError {
    /// A 409 with `code`.
    pub fn conflict_code(code: &'static str, message: impl Into<String>) -> Self {
        PlacementError::Coded {
            status: StatusCode::CONFLICT,
            code,
            message: message.into(),
        }
    }

    /// A generation mismatch (`placement.concurrent_update`).
    pub fn concurrent(message: impl Into<String>) -> Self {
        Self::conflict_code(codes::CONCURRENT_UPDATE, message)
    }

    /// A 400 with `code` (query parameter errors).
    pub fn bad_request_code(code: &'static str, message: impl Into<String>) -> Self {
        PlacementError::Coded {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PlacementError::Conflict(_) => StatusCode::CONFLICT,
            PlacementError::Coded { status, .. } => *status,
            PlacementError::NotFound(_) => StatusCode::NOT_FOUND,
            PlacementError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PlacementError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            PlacementError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == StatusCode::CONFLICT
    }

    /// The in-process API reports every 409 as [`PlacementError::Conflict`], whatever its
    /// code, so callers match one variant.
    pub fn into_plain(self) -> Self {
        match self {
            PlacementError::Coded {
                status, message, ..
            } if status == StatusCode::CONFLICT => PlacementError::Conflict(message),
            e => e,
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            PlacementError::Coded { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<PlacementError> for ApiError {
    fn from(e: PlacementError) -> ApiError {
        match &e {
            PlacementError::Db(err) => ApiError::internal(format!("database: {err}")),
            _ => ApiError::new(e.status(), e.to_string()),
        }
    }
}

impl From<ApiError> for PlacementError {
    /// Errors of the shared extractors (JSON bodies) keep their status.
    fn from(e: ApiError) -> Self {
        match e.status {
            StatusCode::NOT_FOUND => PlacementError::NotFound(e.message),
            StatusCode::CONFLICT => PlacementError::Conflict(e.message),
            StatusCode::BAD_REQUEST => PlacementError::BadRequest(e.message),
            status => PlacementError::Coded {
                status,
                code: "placement.undefined_code",
                message: e.message,
            },
        }
    }
}

impl IntoResponse for PlacementError {
    fn into_response(self) -> Response {
        let code = self.code();
        let mut resp = ApiError::from(self).into_response();
        if let Some(code) = code {
            resp.extensions_mut().insert(ErrorCode(code));
        }
        resp
    }
}

/// Maps a unique-constraint violation to a 409 with `code`, other errors unchanged.
pub fn on_unique(
    code: &'static str,
    message: impl Into<String>,
) -> impl FnOnce(ferrostack_store::sqlx::Error) -> PlacementError {
    let message = message.into();
    move |e| {
        if ferrostack_store::is_unique_violation(&e) {
            PlacementError::conflict_code(code, message)
        } else {
            e.into()
        }
    }
}
