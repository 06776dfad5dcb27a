//! Errors of the identity service and their one mapping to Keystone's error bodies.

use ferrostack_api::ApiError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Validation(String),
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict { kind: &'static str, detail: String },
    /// Authentication failed; the message never says whether the user exists.
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("{0}")]
    UnauthorizedWithReason(String),
    #[error("You are not authorized to perform the requested action: {0}.")]
    Forbidden(String),
    #[error("{0}")]
    ForbiddenWithReason(String),
    #[error("database error")]
    Db(#[from] ferrostack_store::sqlx::Error),
    #[error("{0}")]
    Internal(String),
    /// An error already in wire form (policy refusals, bad request bodies).
    #[error("{0}")]
    Api(ApiError),
}

impl From<ApiError> for IdentityError {
    fn from(e: ApiError) -> Self {
        IdentityError::Api(e)
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl IdentityError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        IdentityError::NotFound {
            kind,
            id: id.into(),
        }
    }
    pub fn validation(msg: impl Into<String>) -> Self {
        IdentityError::Validation(msg.into())
    }
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        IdentityError::Conflict {
            kind,
            detail: detail.into(),
        }
    }
}

/// Maps a unique-constraint violation to 409 and anything else to a database error.
pub fn conflict_or(
    kind: &'static str,
    detail: impl Into<String>,
) -> impl FnOnce(ferrostack_store::sqlx::Error) -> IdentityError {
    let detail = detail.into();
    move |e| {
        if ferrostack_store::is_unique_violation(&e) {
            IdentityError::conflict(kind, detail)
        } else {
            IdentityError::Db(e)
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> ApiError {
        let status = match &e {
            IdentityError::NotFound { .. } => StatusCode::NOT_FOUND,
            IdentityError::Validation(_) => StatusCode::BAD_REQUEST,
            IdentityError::Conflict { .. } => StatusCode::CONFLICT,
            IdentityError::Unauthorized | IdentityError::UnauthorizedWithReason(_) => {
                StatusCode::UNAUTHORIZED
            }
            IdentityError::Forbidden(_) | IdentityError::ForbiddenWithReason(_) => {
                StatusCode::FORBIDDEN
            }
            IdentityError::Db(err) => return ApiError::internal(format!("database: {err}")),
            IdentityError::Internal(msg) => return ApiError::internal(msg),
            IdentityError::Api(inner) => return inner.clone(),
        };
        ApiError::new(status, e.to_string())
    }
}

impl axum::response::IntoResponse for IdentityError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages() {
        let e: ApiError = IdentityError::not_found("user", "abc").into();
        assert_eq!(e.status, 404);
        assert_eq!(e.message, "Could not find user: abc.");
        let e: ApiError = IdentityError::Unauthorized.into();
        assert_eq!(e.status, 401);
        let e: ApiError = IdentityError::conflict("project", "dup").into();
        assert_eq!(e.status, 409);
        let e: ApiError = IdentityError::Db(ferrostack_store::sqlx::Error::RowNotFound).into();
        assert_eq!(e.status, 500);
        assert!(
            !e.message.contains("RowNotFound"),
            "internal details stay in the log"
        );
    }
}
