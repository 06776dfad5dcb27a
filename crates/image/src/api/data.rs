//! Image data: `PUT/GET /v2/images/{id}/file` (streamed both ways), and the interoperable
//! import: `PUT /v2/images/{id}/stage` then `POST /v2/images/{id}/import` with glance-direct.

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use futures::{StreamExt, TryStreamExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use super::State;
use crate::error::{ImageError, Result};
use crate::store::ByteStream;
use crate::ImageService;

fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, e))
        .boxed()
}

/// Image data comes as `application/octet-stream` (parameters aside), or Glance answers 415
/// before looking at anything else.
fn octet_stream(headers: &HeaderMap) -> Result<()> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mime = ct.as_deref().map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if mime.as_deref() == Some("application/octet-stream") {
        return Ok(());
    }
    Err(ImageError::Api(ferrostack_api::ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "The request media type {} is not supported by this server. Invalid content type {}",
            ct.as_deref().unwrap_or("None"),
            ct.as_deref().unwrap_or("None")
        ),
    )))
}

pub async fn upload(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    octet_stream(&headers)?;
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "upload_image").await?;
    svc.upload_data(&img, body_stream(body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses a single `bytes=a-b` range against `size`.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>().ok()?.saturating_add(1).min(size)
        };
        (start, end)
    };
    (start < end && start < size).then_some((start, end))
}

pub async fn download(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find(&id, &auth).await?;
    auth.enforce(
        &svc.policy,
        "download_image",
        &svc.target(&img, &auth).await?,
    )?;
    if !ImageService::downloadable(&img, &auth)? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let size = u64::try_from(img.size.unwrap_or(0)).unwrap_or(0);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(r) => Some(parse_range(r, size).ok_or_else(|| {
            ImageError::RangeNotSatisfiable(format!(
                "Requested range {r} not satisfiable for {size} bytes."
            ))
        })?),
    };
    let stream = svc.read_data(&img, range).await?;
    let (status, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, b - a),
        None => (StatusCode::OK, size),
    };
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some((a, b)) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{}/{size}", b - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    } else if let Some(md5) = img
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("content-md5", md5);
    }
    Ok(resp)
}

pub async fn stage(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    octet_stream(&headers)?;
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "upload_image").await?;
    svc.stage_upload(&img, body_stream(body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn import(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "modify_image").await?;
    let req: Value = ferrostack_api::json::parse(&body)?;
    let method = req
        .pointer("/method/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if method != "glance-direct" {
        return Err(ImageError::BadRequest(format!(
            "Import method {method:?} is not supported; use glance-direct."
        )));
    }
    // The data is local: the import finishes before the 202 goes out, so a client polling
    // the image already sees its final status.
    svc.import_staged(&img).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
