//! Errors on the wire. Handlers return [`ApiError`] (status + message); the service's
//! [`ErrorFormat`] layer renders it, and any other error response (unknown path, wrong method,
//! body too large), as that service's OpenStack error body. This is the one place where error
//! bodies are written.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// An error to send to the client. `message` is shown to the client: never put secrets or
/// internal details in it (log those where the error is created).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// A server-side failure; the detail goes to the log, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error prevented the server from fulfilling your request.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// Carried in the response extensions until the service layer renders the body.
#[derive(Debug, Clone)]
struct PendingError(String);

/// A machine-readable error code (Placement's `code`, e.g. `placement.concurrent_update`),
/// put in an error response's extensions by a handler; formats without codes ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = self.status;
        resp.extensions_mut().insert(PendingError(self.message));
        resp
    }
}

/// The error body shape of each OpenStack service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"code": 404, "title": "Not Found", "message": "..."}}`
    Keystone,
    /// `{"itemNotFound": {"code": 404, "message": "..."}}` (Nova, Cinder, Placement-like)
    Nova,
    /// `{"NeutronError": {"type": "...", "message": "...", "detail": ""}}` (`type` from the
    /// response's [`ErrorCode`])
    Neutron,
    /// `{"errors": [{"status": 404, "title": "...", "detail": "...", "code": "placement.…"}]}`
    /// (`code` from the response's [`ErrorCode`], `placement.undefined_code` without one)
    Placement,
    /// `{"code": "404 Not Found", "title": "Not Found", "message": "..."}` (Glance, as webob
    /// renders its errors for JSON clients)
    Glance,
}

impl ErrorFormat {
    /// Renders an error body for `status` with `message` in this format.
    pub fn body(self, status: StatusCode, message: &str) -> serde_json::Value {
        self.body_with_code(status, message, None)
    }

    /// Like [`ErrorFormat::body`], with the error's code for formats that carry one.
    pub fn body_with_code(
        self,
        status: StatusCode,
        message: &str,
        code: Option<ErrorCode>,
    ) -> serde_json::Value {
        let title = status.canonical_reason().unwrap_or("Error");
        match self {
            ErrorFormat::Keystone => serde_json::json!({
                "error": {"code": status.as_u16(), "title": title, "message": message}
            }),
            ErrorFormat::Nova => {
                let key = match status.as_u16() {
                    400 => "badRequest",
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "itemNotFound",
                    405 => "badMethod",
                    409 => "conflictingRequest",
                    413 => "overLimit",
                    415 => "badMediaType",
                    501 => "notImplemented",
                    503 => "serviceUnavailable",
                    _ => "computeFault",
                };
                serde_json::json!({ key: {"code": status.as_u16(), "message": message} })
            }
            ErrorFormat::Neutron => {
                // Neutron's `type` is its exception's class name; a handler gives it as the
                // response's ErrorCode, else the generic one of the status.
                let kind = code.map(|c| c.0).unwrap_or(match status.as_u16() {
                    400 => "HTTPBadRequest",
                    401 => "NotAuthorized",
                    403 => "PolicyNotAuthorized",
                    404 => "HTTPNotFound",
                    405 => "HTTPMethodNotAllowed",
                    409 => "Conflict",
                    412 => "PreconditionFailed",
                    _ => "NeutronError",
                });
                serde_json::json!({"NeutronError": {"type": kind, "message": message, "detail": ""}})
            }
            ErrorFormat::Glance => serde_json::json!({
                "code": format!("{} {}", status.as_u16(), title),
                "title": title,
                "message": message,
            }),
            ErrorFormat::Placement => serde_json::json!({
                "errors": [{
                    "status": status.as_u16(),
                    "title": title,
                    "detail": message,
                    "code": code.map_or("placement.undefined_code", |c| c.0),
                }]
            }),
        }
    }

    /// Turns a response carrying an [`ApiError`], or any bodiless error status, into this
    /// format's error body. Successful responses pass through untouched.
    pub fn render(self, resp: Response) -> Response {
        let status = resp.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return resp;
        }
        let pending = resp.extensions().get::<PendingError>().cloned();
        let message = match pending {
            Some(PendingError(m)) => m,
            None => {
                // Only rewrite responses that have no body of their own (axum's 404/405,
                // body-limit 413, ...); a handler that built its own body keeps it.
                let has_body = resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .map(|v| v.as_bytes().starts_with(b"application/json"))
                    .unwrap_or(false);
                if has_body {
                    return resp;
                }
                default_message(status).to_string()
            }
        };
        let code = resp.extensions().get::<ErrorCode>().copied();
        let (mut parts, _) = resp.into_parts();
        let body =
            serde_json::to_vec(&self.body_with_code(status, &message, code)).unwrap_or_default();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.extensions.remove::<PendingError>();
        Response::from_parts(parts, Body::from(body))
    }

    /// A tower layer applying [`ErrorFormat::render`] to a service's router.
    pub fn layer(self) -> tower::util::MapResponseLayer<impl Fn(Response) -> Response + Clone> {
        tower::util::MapResponseLayer::new(move |resp: Response| self.render(resp))
    }
}

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "The resource could not be found.",
        405 => "The method is not allowed for the requested URL.",
        413 => "Request Entity Too Large",
        415 => "The request media type is not supported.",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_body_has_code_title_message() {
        let b = ErrorFormat::Keystone.body(StatusCode::NOT_FOUND, "Could not find user: x.");
        assert_eq!(b["error"]["code"], 404);
        assert_eq!(b["error"]["title"], "Not Found");
        assert_eq!(b["error"]["message"], "Could not find user: x.");
    }

    #[test]
    fn nova_body_uses_fault_names() {
        let b = ErrorFormat::Nova.body(StatusCode::CONFLICT, "busy");
        assert_eq!(b["conflictingRequest"]["code"], 409);
        let b = ErrorFormat::Nova.body(StatusCode::NOT_FOUND, "gone");
        assert_eq!(b["itemNotFound"]["message"], "gone");
    }

    #[test]
    fn placement_body_carries_the_code() {
        let b = ErrorFormat::Placement.body(StatusCode::NOT_FOUND, "gone");
        assert_eq!(b["errors"][0]["code"], "placement.undefined_code");
        let mut resp = ApiError::conflict("generation").into_response();
        resp.extensions_mut()
            .insert(ErrorCode("placement.concurrent_update"));
        let out = ErrorFormat::Placement.render(resp);
        assert_eq!(out.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn render_rewrites_api_error_and_keeps_success() {
        let resp = ApiError::conflict("dup").into_response();
        let out = ErrorFormat::Keystone.render(resp);
        assert_eq!(out.status(), StatusCode::CONFLICT);
        assert_eq!(out.headers()[header::CONTENT_TYPE], "application/json");
        let ok = Response::new(Body::from("x"));
        assert_eq!(ErrorFormat::Keystone.render(ok).status(), StatusCode::OK);
    }
}
