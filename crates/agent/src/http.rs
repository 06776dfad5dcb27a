//! [`HttpController`]: the controller reached over HTTP, for `ferrostack agent` processes.
//!
//! The agent authenticates with Keystone like any client (password auth from the usual
//! `OS_*` variables, so `. openrc` works) and sends `X-Auth-Token` to the controller's
//! `/compute/agent-api/v1` endpoints. The token is renewed at three quarters of its lifetime
//! (measured from the token's own issued/expiry times, so clock skew does not matter) and
//! at once when the controller answers 401. Neither the password nor the token is ever
//! logged or shown by `Debug`. HTTPS (rustls) trusts the system's certificate store plus the
//! PEM file `OS_CACERT` names, as the openstack client does.
//!
//! Failures are errors for the [`crate::Agent`] loop, which leaves the guests as they are and
//! tries again; [`Controller::wait_for_change`] sleeps out its timeout when the controller
//! cannot be reached, so a down controller is not hammered.

use std::time::Duration;

use ferrostack_agent_api::{
    Answer, ConsoleIo, Controller, DesiredHost, HostInfo, HostReport, ImageInfo, LinkError, Query,
    CONSOLE_UPGRADE,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A name or an id, as the `OS_*_NAME` / `OS_*_ID` variables give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Name(String),
    Id(String),
}

impl Ref {
    fn json(&self) -> Value {
        match self {
            Ref::Name(n) => json!({ "name": n }),
            Ref::Id(i) => json!({ "id": i }),
        }
    }
}

/// Keystone password credentials with a project scope.
#[derive(Debug, Clone)]
pub struct PasswordAuth {
    /// The identity endpoint, e.g. `http://ctl:5000/identity` (a trailing `/v3` is fine).
    pub auth_url: String,
    pub user: Ref,
    /// The user's domain (ignored when the user is given by id).
    pub user_domain: Ref,
    pub password: Secret,
    pub project: Ref,
    /// The project's domain (ignored when the project is given by id).
    pub project_domain: Ref,
}

impl PasswordAuth {
    /// Reads `OS_AUTH_URL`, `OS_USERNAME`/`OS_USER_ID`, `OS_PASSWORD`,
    /// `OS_PROJECT_NAME`/`OS_PROJECT_ID`, `OS_USER_DOMAIN_NAME`/`_ID` and
    /// `OS_PROJECT_DOMAIN_NAME`/`_ID` (domains default to the `default` domain).
    pub fn from_env() -> Result<Self, LinkError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// As [`Self::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LinkError> {
        let missing = |what: &str| {
            LinkError::Config(format!(
                "{what} is not set: source an openrc of a user with the admin or service role"
            ))
        };
        let pick = |name: &str, id: &str| -> Option<Ref> {
            get(id).map(Ref::Id).or_else(|| get(name).map(Ref::Name))
        };
        let domain = |name: &str, id: &str| pick(name, id).unwrap_or(Ref::Id("default".into()));
        Ok(PasswordAuth {
            auth_url: get("OS_AUTH_URL").ok_or_else(|| missing("OS_AUTH_URL"))?,
            user: pick("OS_USERNAME", "OS_USER_ID").ok_or_else(|| missing("OS_USERNAME"))?,
            user_domain: domain("OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID"),
            password: Secret(get("OS_PASSWORD").ok_or_else(|| missing("OS_PASSWORD"))?),
            project: pick("OS_PROJECT_NAME", "OS_PROJECT_ID")
                .ok_or_else(|| missing("OS_PROJECT_NAME"))?,
            project_domain: domain("OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID"),
        })
    }

    fn tokens_url(&self) -> String {
        let base = self.auth_url.trim_end_matches('/');
        let base = base.strip_suffix("/v3").unwrap_or(base);
        format!("{base}/v3/auth/tokens")
    }

    fn body(&self) -> Value {
        let mut user = self.user.json();
        if matches!(self.user, Ref::Name(_)) {
            user["domain"] = self.user_domain.json();
        }
        user["password"] = json!(self.password.expose());
        let mut project = self.project.json();
        if matches!(self.project, Ref::Name(_)) {
            project["domain"] = self.project_domain.json();
        }
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": project},
        }})
    }
}

struct Token {
    value: Secret,
    renew_at: Instant,
}

/// Timeout of every call but the long poll.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an image download or a snapshot upload may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);
/// How much longer than the long poll itself the client waits for its answer.
const WAIT_MARGIN: Duration = Duration::from_secs(10);

/// The controller over HTTP.
pub struct HttpController {
    /// `<controller>/compute/agent-api/v1`
    base: String,
    auth: PasswordAuth,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for HttpController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpController")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenTimes,
}

#[derive(Deserialize)]
struct TokenTimes {
    issued_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize)]
struct QueriesBody {
    queries: Vec<Query>,
}

#[derive(Deserialize)]
struct WaitBody {
    #[allow(dead_code)]
    changed: bool,
}

impl HttpController {
    /// `controller` is the cloud's base URL (the one before `/compute`, `/identity`, ...).
    /// HTTPS is verified against the system's trust store.
    pub fn new(controller: &str, auth: PasswordAuth) -> Result<Self, LinkError> {
        Self::with_ca(controller, auth, None)
    }

    /// As [`Self::new`], also trusting the PEM certificates of `ca_pem` (what `OS_CACERT`
    /// names), for clouds with their own certificate authority.
    pub fn with_ca(
        controller: &str,
        auth: PasswordAuth,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, LinkError> {
        for url in [controller, auth.auth_url.as_str()] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(LinkError::Config(format!(
                    "{url}: not an http:// or https:// URL"
                )));
            }
            if url.starts_with("http://") && !is_loopback(url) {
                tracing::warn!(url, "plain HTTP to another machine: credentials and tokens travel unencrypted; use https://");
            }
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("ferrostack-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| LinkError::transport("CA certificates", e))?;
            if certs.is_empty() {
                return Err(LinkError::Config(
                    "CA certificates: no certificate found".into(),
                ));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| LinkError::transport("HTTP client", e))?;
        Ok(HttpController {
            base: format!("{}/compute/agent-api/v1", controller.trim_end_matches('/')),
            auth,
            client,
            token: Default::default(),
        })
    }

    /// A valid token, fetched from Keystone when there is none or it is due for renewal.
    async fn token(&self) -> Result<Secret, LinkError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        let url = self.auth.tokens_url();
        let resp = self
            .client
            .post(&url)
            .json(&self.auth.body())
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| LinkError::transport(format!("authenticating at {url}"), e))?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            return Err(LinkError::Refused {
                what: format!("authenticating at {url}"),
                status: status.as_u16(),
                message: error_message(resp).await,
            });
        }
        let value = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new)
            .ok_or_else(|| LinkError::Refused {
                what: format!("authenticating at {url}"),
                status: status.as_u16(),
                message: "no X-Subject-Token in the answer".into(),
            })?;
        let times: TokenBody = resp
            .json()
            .await
            .map_err(|e| LinkError::transport(format!("{url}: token body"), e))?;
        let life = (times.token.expires_at - times.token.issued_at)
            .to_std()
            .unwrap_or_default();
        *slot = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + life * 3 / 4,
        });
        tracing::debug!(lifetime_s = life.as_secs(), "agent token issued");
        Ok(value)
    }

    /// One call to the controller; a 401 renews the token and retries once.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<reqwest::Response, LinkError> {
        self.send(method, path, timeout, |req| async move {
            Ok(match body {
                Some(b) => req.json(b),
                None => req,
            })
        })
        .await
    }

    /// As [`Self::call`], with the request finished by `prepare` (called again for the retry,
    /// so a streamed body is opened afresh).
    async fn send<F, Fut>(
        &self,
        method: Method,
        path: &str,
        timeout: Duration,
        prepare: F,
    ) -> Result<reqwest::Response, LinkError>
    where
        F: Fn(reqwest::RequestBuilder) -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::RequestBuilder, LinkError>>,
    {
        let url = format!("{}/{path}", self.base);
        for attempt in 0..2 {
            let token = self.token().await?;
            let req = self
                .client
                .request(method.clone(), &url)
                .header("x-auth-token", token.expose())
                .timeout(timeout);
            let resp = prepare(req)
                .await?
                .send()
                .await
                .map_err(|e| LinkError::transport(format!("{method} {url}"), e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                // Expired or revoked early: drop it (unless another call already did).
                let mut slot = self.token.lock().await;
                if slot
                    .as_ref()
                    .is_some_and(|t| t.value.expose() == token.expose())
                {
                    *slot = None;
                }
                continue;
            }
            if !status.is_success() {
                return Err(LinkError::Refused {
                    what: format!("{method} {url}"),
                    status: status.as_u16(),
                    message: error_message(resp).await,
                });
            }
            return Ok(resp);
        }
        unreachable!("the second attempt always returns")
    }
}

impl HttpController {
    /// Streams file `file` to the controller as the body of `PUT <path>` (with one more
    /// header when given).
    async fn put_file(
        &self,
        path: &str,
        file: &std::path::Path,
        header: Option<(&'static str, &str)>,
    ) -> Result<(), LinkError> {
        self.send(Method::PUT, path, TRANSFER_TIMEOUT, |req| async move {
            let body = reqwest::Body::from(crate::transfer::open(file).await?);
            let req = match header {
                Some((name, value)) => req.header(name, value),
                None => req,
            };
            Ok(req
                .header("content-type", "application/octet-stream")
                .body(body))
        })
        .await?;
        Ok(())
    }
}

/// True for `http://127.0.0.1...`, `http://localhost...` and `http://[::1]...`.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The message of an OpenStack error body (`{"<kind>": {"message": ...}}` or Keystone's
/// `{"error": {"message": ...}}`), else the start of the body.
async fn error_message(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v.as_object()?
                .values()
                .next()?
                .get("message")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

#[async_trait::async_trait]
impl Controller for HttpController {
    async fn register(&self, host: &str, info: &HostInfo) -> Result<(), LinkError> {
        let body = serde_json::to_value(info).map_err(|e| LinkError::transport("host info", e))?;
        self.call(
            Method::POST,
            &format!("hosts/{host}/register"),
            Some(&body),
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    async fn desired(&self, host: &str) -> Result<DesiredHost, LinkError> {
        let resp = self
            .call(
                Method::GET,
                &format!("hosts/{host}/desired"),
                None,
                CALL_TIMEOUT,
            )
            .await?;
        resp.json()
            .await
            .map_err(|e| LinkError::transport(format!("desired state of {host}"), e))
    }

    async fn queries(&self, host: &str) -> Result<Vec<Query>, LinkError> {
        let resp = self
            .call(
                Method::GET,
                &format!("hosts/{host}/queries"),
                None,
                CALL_TIMEOUT,
            )
            .await?;
        let body: QueriesBody = resp
            .json()
            .await
            .map_err(|e| LinkError::transport(format!("queries for {host}"), e))?;
        Ok(body.queries)
    }

    async fn answer(&self, host: &str, query_id: &str, answer: &Answer) -> Result<(), LinkError> {
        let body = serde_json::to_value(answer).map_err(|e| LinkError::transport("answer", e))?;
        self.call(
            Method::POST,
            &format!("hosts/{host}/queries/{query_id}"),
            Some(&body),
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// `GET hosts/{host}/consoles/{id}` upgraded to the console's raw bytes
    /// (`Upgrade: ferrostack-console`): the controller's proxy carries them on to the user.
    async fn dial_console(
        &self,
        host: &str,
        query_id: &str,
    ) -> Result<Box<dyn ConsoleIo>, LinkError> {
        let url = format!("{}/hosts/{host}/consoles/{query_id}", self.base);
        let what = format!("GET {url}");
        let token = self.token().await?;
        // No timeout on the request itself: it would also end the console.
        let sent = self
            .client
            .get(&url)
            .header("x-auth-token", token.expose())
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, CONSOLE_UPGRADE)
            .send();
        let resp = tokio::time::timeout(CALL_TIMEOUT, sent)
            .await
            .map_err(|e| LinkError::transport(what.clone(), e))?
            .map_err(|e| LinkError::transport(what.clone(), e))?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(LinkError::Refused {
                what,
                status: status.as_u16(),
                message: error_message(resp).await,
            });
        }
        let io = resp
            .upgrade()
            .await
            .map_err(|e| LinkError::transport(what, e))?;
        Ok(Box::new(io))
    }

    async fn report(&self, host: &str, report: HostReport) -> Result<(), LinkError> {
        let body = serde_json::to_value(&report).map_err(|e| LinkError::transport("report", e))?;
        self.call(
            Method::POST,
            &format!("hosts/{host}/reports"),
            Some(&body),
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// Streams the file to the controller, which stores it in the image service.
    async fn upload_snapshot(
        &self,
        host: &str,
        image_id: &str,
        path: &std::path::Path,
        disk_format: &str,
    ) -> Result<(), LinkError> {
        self.put_file(
            &format!("hosts/{host}/images/{image_id}/file"),
            path,
            Some(("x-image-disk-format", disk_format)),
        )
        .await
    }

    async fn upload_migration_disk(
        &self,
        host: &str,
        migration: &str,
        path: &std::path::Path,
    ) -> Result<(), LinkError> {
        self.put_file(
            &format!("hosts/{host}/migrations/{migration}/disk"),
            path,
            None,
        )
        .await
    }

    async fn download_migration_disk(
        &self,
        host: &str,
        migration: &str,
        dest: &std::path::Path,
    ) -> Result<bool, LinkError> {
        let resp = self
            .call(
                Method::GET,
                &format!("hosts/{host}/migrations/{migration}/disk"),
                None,
                TRANSFER_TIMEOUT,
            )
            .await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(false);
        }
        crate::transfer::write_stream(dest, resp.bytes_stream(), |e| {
            LinkError::transport(format!("downloading the disk of migration {migration}"), e)
        })
        .await?;
        Ok(true)
    }

    async fn metadata(
        &self,
        host: &str,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<ferrostack_agent_api::GuestSpec>, LinkError> {
        #[derive(serde::Deserialize)]
        struct Found {
            guest: Option<ferrostack_agent_api::GuestSpec>,
        }
        let resp = self
            .call(
                Method::GET,
                &format!("hosts/{host}/metadata?network_id={network_id}&address={address}"),
                None,
                CALL_TIMEOUT,
            )
            .await?;
        let found: Found = resp
            .json()
            .await
            .map_err(|e| LinkError::transport("a metadata request's guest", e))?;
        Ok(found.guest)
    }

    async fn image(&self, host: &str, image_id: &str) -> Result<ImageInfo, LinkError> {
        let resp = self
            .call(
                Method::GET,
                &format!("hosts/{host}/images/{image_id}"),
                None,
                CALL_TIMEOUT,
            )
            .await?;
        resp.json()
            .await
            .map_err(|e| LinkError::transport(format!("image {image_id}"), e))
    }

    async fn download_image(
        &self,
        host: &str,
        image_id: &str,
        dest: &std::path::Path,
    ) -> Result<(), LinkError> {
        let resp = self
            .call(
                Method::GET,
                &format!("hosts/{host}/images/{image_id}/file"),
                None,
                TRANSFER_TIMEOUT,
            )
            .await?;
        crate::transfer::write_stream(dest, resp.bytes_stream(), |e| {
            LinkError::transport(format!("downloading image {image_id}"), e)
        })
        .await
    }

    async fn heartbeat(&self, host: &str) -> Result<(), LinkError> {
        self.call(
            Method::POST,
            &format!("hosts/{host}/heartbeat"),
            None,
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    async fn wait_for_change(&self, host: &str, timeout: Duration) {
        let started = Instant::now();
        let path = format!("hosts/{host}/wait?timeout={:.3}", timeout.as_secs_f64());
        let answer = match self
            .call(Method::GET, &path, None, timeout + WAIT_MARGIN)
            .await
        {
            Ok(resp) => resp
                .json::<WaitBody>()
                .await
                .map_err(|e| LinkError::transport("long poll", e)),
            Err(e) => Err(e),
        };
        if let Err(e) = answer {
            tracing::debug!(host, error = %e, "long poll failed; waiting out its timeout");
            // Unreachable controller: do not spin; the agent's next pass retries.
            tokio::time::sleep_until(started + timeout).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn openrc_variables_make_a_scoped_password_request() {
        let a = PasswordAuth::from_lookup(env(&[
            ("OS_AUTH_URL", "http://ctl:5000/identity/"),
            ("OS_USERNAME", "agent"),
            ("OS_PASSWORD", "s3cret"),
            ("OS_PROJECT_NAME", "service"),
            ("OS_USER_DOMAIN_NAME", "Default"),
        ]))
        .unwrap();
        assert_eq!(a.tokens_url(), "http://ctl:5000/identity/v3/auth/tokens");
        let b = a.body();
        let user = &b["auth"]["identity"]["password"]["user"];
        assert_eq!(user["name"], "agent");
        assert_eq!(user["domain"], json!({"name": "Default"}));
        assert_eq!(user["password"], "s3cret");
        let project = &b["auth"]["scope"]["project"];
        assert_eq!(project["name"], "service");
        assert_eq!(project["domain"], json!({"id": "default"}));
        // The password never shows in debug output.
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn ids_win_over_names_and_v3_urls_are_accepted() {
        let a = PasswordAuth::from_lookup(env(&[
            ("OS_AUTH_URL", "http://ctl/identity/v3"),
            ("OS_USERNAME", "agent"),
            ("OS_PASSWORD", "pw"),
            ("OS_PROJECT_NAME", "service"),
            ("OS_PROJECT_ID", "p1"),
        ]))
        .unwrap();
        assert_eq!(a.tokens_url(), "http://ctl/identity/v3/auth/tokens");
        assert_eq!(a.body()["auth"]["scope"]["project"], json!({"id": "p1"}));
    }

    #[test]
    fn missing_credentials_are_named() {
        let e =
            PasswordAuth::from_lookup(env(&[("OS_AUTH_URL", "http://ctl/identity")])).unwrap_err();
        assert!(e.to_string().contains("OS_USERNAME"), "{e}");
    }

    #[test]
    fn controller_urls() {
        let a = PasswordAuth::from_lookup(env(&[
            ("OS_AUTH_URL", "http://ctl/identity"),
            ("OS_USERNAME", "agent"),
            ("OS_PASSWORD", "pw"),
            ("OS_PROJECT_NAME", "service"),
        ]))
        .unwrap();
        assert!(HttpController::new("ftp://ctl", a.clone()).is_err());
        assert!(HttpController::new("https://ctl", a.clone()).is_ok());
        let c = HttpController::new("http://ctl/", a.clone()).unwrap();
        assert_eq!(c.base, "http://ctl/compute/agent-api/v1");
        assert!(HttpController::with_ca("https://ctl", a, Some(b"not a certificate")).is_err());
        assert!(is_loopback("http://127.0.0.1:5000/x"));
        assert!(is_loopback("http://localhost"));
        assert!(is_loopback("http://[::1]:80/"));
        assert!(!is_loopback("http://ctl.example:5000"));
        assert!(!is_loopback("http://10.0.0.1"));
    }
}
