//! Errors of the networking service and their one mapping to Neutron's error bodies:
//! `{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}`, with
//! Neutron's exception class names as `type` and its messages.

use ferrostack_api::{ApiError, ErrorCode};
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A refusal the client sees: the status, Neutron's error type and its message.
    #[error("{message}")]
    Neutron {
        status: StatusCode,
        kind: &'static str,
        message: String,
    },
    #[error("database error")]
    Db(#[from] ferrostack_store::sqlx::Error),
    #[error("{0}")]
    Api(ApiError),
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

impl NetworkError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        NetworkError::Neutron {
            status,
            kind,
            message: message.into(),
        }
    }
    /// An attribute that fails validation (Neutron's `HTTPBadRequest` from the API layer).
    pub fn invalid_attr(attr: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "HTTPBadRequest",
            format!("Invalid input for {attr}. Reason: {reason}."),
        )
    }
    /// A request that is well-formed but cannot be done (Neutron's `InvalidInput`).
    pub fn invalid_input(message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: {message}."),
        )
    }
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }
    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, message)
    }
    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }
    pub fn network_not_found(id: &str) -> Self {
        Self::not_found(
            "NetworkNotFound",
            format!("Network {id} could not be found."),
        )
    }
    pub fn subnet_not_found(id: &str) -> Self {
        Self::not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
    }
    pub fn port_not_found(id: &str) -> Self {
        Self::not_found("PortNotFound", format!("Port {id} could not be found."))
    }
    pub fn security_group_not_found(id: &str) -> Self {
        Self::not_found(
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        )
    }
    pub fn security_group_rule_not_found(id: &str) -> Self {
        Self::not_found(
            "SecurityGroupRuleNotFound",
            format!("Security group rule {id} does not exist"),
        )
    }
    pub fn over_quota(resource: &str) -> Self {
        Self::conflict(
            "OverQuota",
            format!("Quota exceeded for resources: ['{resource}']."),
        )
    }
    /// A policy refusal, as Neutron words it.
    pub fn policy(rule: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            format!("({rule}) is disallowed by policy"),
        )
    }
}

impl From<ApiError> for NetworkError {
    fn from(e: ApiError) -> Self {
        NetworkError::Api(e)
    }
}

impl axum::response::IntoResponse for NetworkError {
    fn into_response(self) -> axum::response::Response {
        match self {
            NetworkError::Neutron {
                status,
                kind,
                message,
            } => {
                let mut resp = ApiError::new(status, message).into_response();
                resp.extensions_mut().insert(ErrorCode(kind));
                resp
            }
            NetworkError::Db(err) => ApiError::internal(format!("database: {err}")).into_response(),
            NetworkError::Api(e) => e.into_response(),
        }
    }
}
