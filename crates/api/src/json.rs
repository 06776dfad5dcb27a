//! A JSON body extractor whose rejections are OpenStack errors (400 with the field and the
//! problem, 413 over the size limit) instead of axum's plain-text ones.

use axum::extract::{FromRequest, Request};
use http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Largest JSON request body accepted (Keystone's default `max_request_body_size` is 112 KiB;
/// Nova accepts larger user_data, so services share a more generous bound).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// `Json<T>` as an extractor: checks the content type, the size, and parses into `T`.
/// As a response it serializes `T` with `application/json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct.is_empty() && !ct.contains("json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("The media type {ct} is not supported, use application/json."),
                ));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Request body is larger than {MAX_JSON_BODY} bytes."),
                )
            })?;
        parse(&bytes).map(Json)
    }
}

/// Parses `bytes` as `T`, naming the offending field in the error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("A request body is required."));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("Malformed request body: {inner}"))
        } else if path.is_empty() || path == "." {
            ApiError::bad_request(format!("Invalid input for the request body: {inner}"))
        } else {
            ApiError::bad_request(format!("Invalid input for field '{path}': {inner}"))
        }
    })?;
    // Only whitespace may follow the JSON value (`{"a": 1} junk` is malformed).
    de.end()
        .map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))?;
    if has_escaped_nul(bytes) {
        return Err(nul_error(bytes));
    }
    Ok(value)
}

/// Whether a string of the JSON text holds a NUL (`\u0000`; a raw NUL byte is no valid JSON).
/// No service stores one: PostgreSQL cannot, so refusing it everywhere keeps both engines
/// answering alike.
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(&b"0000"[..]) {
                return true;
            }
            i += 2; // the escaped character is never the start of another escape
        } else {
            i += 1;
        }
    }
    false
}

/// The 400 for a NUL, naming where it is.
fn nul_error(bytes: &[u8]) -> ApiError {
    fn find(v: &serde_json::Value, path: &mut Vec<String>) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().enumerate().any(|(i, x)| {
                path.push(i.to_string());
                let found = find(x, path);
                if !found {
                    path.pop();
                }
                found
            }),
            serde_json::Value::Object(o) => o.iter().any(|(k, x)| {
                path.push(k.replace('\0', "\\u0000"));
                let found = k.contains('\0') || find(x, path);
                if !found {
                    path.pop();
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        find(&v, &mut path);
    }
    ApiError::bad_request(format!(
        "Invalid input for field/attribute {}. NUL characters (\\u0000) are not allowed.",
        if path.is_empty() {
            "body".to_string()
        } else {
            path.join(".")
        }
    ))
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        project: Inner,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[test]
    fn nul_characters_are_refused_with_their_place() {
        let e =
            parse::<serde_json::Value>(br#"{"project": {"tags": ["a", "b\u0000"]}}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("project.tags.1"), "{}", e.message);
        let e = parse::<serde_json::Value>(br#"{"k\u0000": 1}"#).unwrap_err();
        assert!(e.message.contains("NUL"), "{}", e.message);
        // An escaped backslash before `u0000` is text, not a NUL.
        assert!(parse::<serde_json::Value>(br#"{"a": "x\\u0000"}"#).is_ok());
        assert!(parse::<serde_json::Value>(br#"{"a": "\\\u0000"}"#).is_err());
    }

    #[test]
    fn names_the_bad_field() {
        let e = parse::<Outer>(br#"{"project": {"name": 1}}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("project.name"), "{}", e.message);
    }

    #[test]
    fn malformed_and_empty_bodies() {
        assert!(parse::<Outer>(b"{nope")
            .unwrap_err()
            .message
            .contains("Malformed"));
        assert!(parse::<Outer>(b"  ")
            .unwrap_err()
            .message
            .contains("required"));
        let e = parse::<serde_json::Value>(br#"{"project": {"name": "a"}} trailing"#).unwrap_err();
        assert!(e.message.contains("Malformed"), "{}", e.message);
        assert!(parse::<serde_json::Value>(b"{\"a\": 1}  \n").is_ok());
        let e = parse::<Outer>(br#"{"project": {"name": "a"}, "x": 1}"#).unwrap_err();
        assert!(e.message.contains("unknown field"), "{}", e.message);
    }
}
