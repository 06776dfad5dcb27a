//! Microversion negotiation (`OpenStack-API-Version: <service> X.Y`, and Nova's legacy
//! `X-OpenStack-Nova-API-Version`).

use http::HeaderMap;

use crate::ApiError;

/// A microversion `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u32, pub u32);

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Microversion {
    pub fn parse(s: &str) -> Option<Microversion> {
        let (a, b) = s.trim().split_once('.')?;
        Some(Microversion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Picks the microversion a request asks for within `[min, max]`: no header means `min`,
/// `latest` means `max`; outside the range is 406 as OpenStack answers.
pub fn negotiate(
    headers: &HeaderMap,
    service: &str,
    legacy_header: Option<&str>,
    min: Microversion,
    max: Microversion,
) -> Result<Microversion, ApiError> {
    let mut asked: Option<String> = None;
    for v in headers.get_all("openstack-api-version") {
        let v = v.to_str().unwrap_or("");
        for part in v.split(',') {
            let mut it = part.split_whitespace();
            if let (Some(svc), Some(ver)) = (it.next(), it.next()) {
                if svc.eq_ignore_ascii_case(service) {
                    asked = Some(ver.to_string());
                }
            }
        }
    }
    if asked.is_none() {
        if let Some(h) = legacy_header {
            asked = headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
    }
    let Some(asked) = asked else { return Ok(min) };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(max);
    }
    let v = Microversion::parse(&asked).ok_or_else(|| {
        ApiError::bad_request(format!(
            "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    })?;
    if v < min || v > max {
        return Err(ApiError::new(
            http::StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {v} is not supported by the API. Minimum is {min} and maximum is {max}."
            ),
        ));
    }
    Ok(v)
}

/// The microversion range of one service, for [`negotiate_layer`].
#[derive(Debug, Clone, Copy)]
pub struct VersionRange {
    /// As named in `OpenStack-API-Version` (`compute`, `placement`, `volume`).
    pub service: &'static str,
    /// A legacy header also accepted and echoed (`X-OpenStack-Nova-API-Version`).
    pub legacy_header: Option<&'static str>,
    pub min: Microversion,
    pub max: Microversion,
}

/// Middleware: negotiates the request's microversion (406/400 as OpenStack answers), puts it in
/// the request extensions for the [`Microversion`] extractor, and echoes it on the response
/// (`OpenStack-API-Version`, the legacy header, `Vary`).
pub async fn negotiate_layer(
    axum::extract::State(range): axum::extract::State<VersionRange>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let v = match negotiate(
        req.headers(),
        range.service,
        range.legacy_header,
        range.min,
        range.max,
    ) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(v);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(val) = http::HeaderValue::from_str(&format!("{} {v}", range.service)) {
        h.insert("openstack-api-version", val);
    }
    let mut vary = String::from("OpenStack-API-Version");
    if let Some(legacy) = range.legacy_header {
        if let Ok(val) = http::HeaderValue::from_str(&v.to_string()) {
            h.insert(legacy, val);
        }
        vary.push_str(", ");
        vary.push_str(legacy);
    }
    if let Ok(val) = http::HeaderValue::from_str(&vary) {
        h.insert(http::header::VARY, val);
    }
    resp
}

impl Microversion {
    /// True when this request's version is at least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Microversion(major, minor)
    }
}

/// Handlers take `Microversion` to branch on the negotiated version (set by
/// [`negotiate_layer`]; the lowest version when the layer is absent).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Microversion {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Microversion>()
            .copied()
            .unwrap_or(Microversion(1, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_versions() {
        let (min, max) = (Microversion(2, 1), Microversion(2, 90));
        let mut h = HeaderMap::new();
        assert_eq!(negotiate(&h, "compute", None, min, max).unwrap(), min);
        h.insert("openstack-api-version", "compute 2.60".parse().unwrap());
        assert_eq!(
            negotiate(&h, "compute", None, min, max).unwrap(),
            Microversion(2, 60)
        );
        h.insert("openstack-api-version", "compute latest".parse().unwrap());
        assert_eq!(negotiate(&h, "compute", None, min, max).unwrap(), max);
        h.insert("openstack-api-version", "compute 3.0".parse().unwrap());
        assert_eq!(
            negotiate(&h, "compute", None, min, max).unwrap_err().status,
            406
        );
    }
}
