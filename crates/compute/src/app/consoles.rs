//! Remote consoles: console URLs of running servers (a random token, stored hashed with an
//! expiry) and what a token connects to.

use sha2::Digest;

use crate::db::{agent_queries, instances, server_extras as db};
use crate::error::{ComputeError, Result};
use crate::instance::{self, Instance};
use crate::peers::{ConsoleKind, ConsoleStream};
use crate::state::{TaskState, VmState};
use crate::ComputeService;

/// `ws://` or `wss://` for the cloud's `http://` or `https://` public URL.
fn websocket_base(public_url: &str) -> String {
    if let Some(rest) = public_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = public_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        public_url.to_string()
    }
}

/// The path part of a URL (`/cloud` of `http://ctl/cloud`, empty for `http://ctl:5000`).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("", |i| rest[i..].trim_end_matches('/'))
}

/// What a console token connects to.
pub use crate::db::server_extras::ConsoleAuth;

/// How long a console URL stays valid (Nova's [consoleauth] token_ttl).
pub const CONSOLE_TOKEN_TTL_SECS: i64 = 600;

const FAKE_CONSOLE_PORT: i64 = 6969;

/// Consoles need a running guest: 409 otherwise (Nova: InstanceNotReady without a host, and
/// its reject_instance_state for deleting/migrating tasks).
pub fn check_console_state(inst: &Instance) -> Result<()> {
    if inst.host.is_none() || inst.vm_state != VmState::Active {
        return Err(ComputeError::Conflict(format!(
            "Instance {} is not ready",
            inst.uuid
        )));
    }
    if let Some(t) = inst
        .task_state
        .filter(|t| matches!(t, TaskState::Deleting | TaskState::Migrating))
    {
        return Err(ComputeError::Conflict(instance::conflict_message(
            "get_console",
            "task_state",
            t.as_str(),
            &inst.uuid,
        )));
    }
    Ok(())
}

/// Checks `protocol`/`type` go together and the console is offered here (Nova's compute
/// manager: ConsoleTypeInvalid / ConsoleTypeUnavailable, both 400).
pub fn check_console_type(protocol: &str, console_type: &str) -> Result<()> {
    let expected = match protocol {
        "vnc" => "novnc",
        "spice" => "spice-html5",
        "serial" => "serial",
        // MKS is a VMware console; no driver here offers it (Nova's [mks] enabled = False).
        _ => {
            return Err(ComputeError::BadRequest(format!(
                "Unavailable console type {console_type}."
            )))
        }
    };
    if console_type != expected {
        return Err(ComputeError::BadRequest(format!(
            "Invalid console type {console_type}"
        )));
    }
    Ok(())
}

/// Tokens are kept only as their SHA-256 (hex), like Nova's console_auth_tokens.
pub fn token_hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ComputeService {
    /// A console URL of `protocol`/`console_type` for a running server (409 otherwise, 400
    /// for a console not offered): a token valid for [`CONSOLE_TOKEN_TTL_SECS`], on the
    /// console page this service serves (the fake driver has no real console; a driver with
    /// one replaces host/port and the page).
    pub async fn remote_console(
        &self,
        inst: &Instance,
        protocol: &str,
        console_type: &str,
    ) -> Result<String> {
        check_console_state(inst)?;
        check_console_type(protocol, console_type)?;
        let token = uuid::Uuid::new_v4().to_string();
        let now = ferrostack_store::now_micros();
        let host = inst.host.clone().unwrap_or_default();
        let public = &self.config.public_url;
        // Hosts with real guests get the proxy's URLs (noVNC's page, the serial websocket),
        // whether this process reaches their consoles or their agents dial back with them;
        // simulated hosts the page that says there is no console.
        let real = self.consoles.of(&host).is_some() || {
            let mut conn = self.db.pool.acquire().await?;
            crate::db::hosts::node_by_host(&mut conn, &host)
                .await?
                .is_some_and(|n| n.hypervisor_type != "fake")
        };
        let proxied = real.then(|| ConsoleKind::of_type(console_type)).flatten();
        let (base, url) = match proxied {
            None => {
                let base = format!("{public}/compute/console/");
                let url = format!("{base}?token={token}");
                (base, url)
            }
            Some(ConsoleKind::Serial) => {
                let base = format!("{}/compute/console/websockify", websocket_base(public));
                let url = format!("{base}?token={token}");
                (base, url)
            }
            Some(ConsoleKind::Vnc) => {
                // noVNC opens `ws(s)://<its own host>/<path>`: the websocket under this
                // cloud's public path, the token in it (as Nova's novncproxy URLs).
                let base = format!("{public}/compute/console/novnc/vnc_lite.html");
                let path = format!(
                    "{}/compute/console/websockify?token={token}",
                    url_path(public)
                );
                let path: String =
                    url::form_urlencoded::byte_serialize(path.trim_start_matches('/').as_bytes())
                        .collect();
                let url = format!("{base}?path={path}");
                (base, url)
            }
        };
        let auth = ConsoleAuth {
            instance_uuid: inst.uuid.clone(),
            console_type: console_type.to_string(),
            host,
            // The fake driver's guests listen nowhere; Nova's fake driver reports this port.
            port: FAKE_CONSOLE_PORT,
            internal_access_path: None,
            access_url_base: base,
            expires: now + CONSOLE_TOKEN_TTL_SECS * 1_000_000,
        };
        let mut tx = self.db.begin_write().await?;
        db::insert_console_auth(&mut tx, &token_hash(&token), &auth, now).await?;
        tx.commit().await?;
        Ok(url)
    }

    /// Opens the console a token authorizes, consuming the token: Unauthorized for a token
    /// unknown, expired or already used; Conflict when the guest's console cannot be reached.
    pub async fn open_console(&self, token: &str) -> Result<Box<dyn ConsoleStream>> {
        let auth = {
            let mut tx = self.db.begin_write().await?;
            let a =
                db::take_console_auth(&mut tx, &token_hash(token), ferrostack_store::now_micros())
                    .await?;
            tx.commit().await?;
            a
        };
        let Some(auth) = auth else {
            return Err(ComputeError::Api(ferrostack_api::ApiError::unauthorized(
                "The console token is invalid, expired or already used.",
            )));
        };
        let inst = {
            let mut conn = self.db.pool.acquire().await?;
            instances::get(&mut conn, &auth.instance_uuid, false).await?
        };
        let inst = inst.ok_or_else(|| {
            ComputeError::NotFound(format!(
                "Instance {} could not be found.",
                auth.instance_uuid
            ))
        })?;
        check_console_state(&inst)?;
        let host = inst.host.clone().unwrap_or_default();
        let kind = ConsoleKind::of_type(&auth.console_type).ok_or_else(|| {
            ComputeError::Conflict(format!("{} consoles are not proxied.", auth.console_type))
        })?;
        match self.consoles.of(&host) {
            Some(opener) => opener
                .open(&inst.uuid, kind)
                .await
                .map_err(|e| ComputeError::Conflict(format!("Guest console not available: {e}"))),
            None => self.dialed_console(&host, &inst.uuid, kind).await,
        }
    }

    /// The console of a guest on a host whose agent runs elsewhere: the agent is asked (as
    /// any question) to dial back with it, and its connection is the stream. 409 when it
    /// cannot (with its reason) or does not within [`crate::agent_link::ASK_TIMEOUT`].
    async fn dialed_console(
        &self,
        host: &str,
        uuid: &str,
        kind: ConsoleKind,
    ) -> Result<Box<dyn ConsoleStream>> {
        let id = uuid::Uuid::new_v4().to_string();
        // Waiting before the agent is asked, so its connection always finds us.
        let mut dialed = self.console_dials.expect(&id, host);
        let ask = ferrostack_agent_api::Ask::dial_back(kind);
        if let Err(e) = self.post_question(&id, host, uuid, ask).await {
            self.console_dials.forget(&id);
            return Err(e);
        }
        let until = tokio::time::Instant::now() + crate::agent_link::ASK_TIMEOUT;
        let outcome = loop {
            tokio::select! {
                stream = &mut dialed => break stream.map_err(|_| {
                    ComputeError::Conflict("The console connection was dropped.".into())
                }),
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
            let answer = {
                let mut conn = self.db.pool.acquire().await?;
                agent_queries::answer_of(&mut conn, &id).await?
            };
            if let Some(Err(why)) = answer {
                break Err(ComputeError::Conflict(format!(
                    "Guest console not available: {why}"
                )));
            }
            if tokio::time::Instant::now() >= until {
                break Err(ComputeError::Conflict(format!(
                    "The compute host {host} did not open the console in time."
                )));
            }
        };
        self.console_dials.forget(&id);
        self.drop_question(&id).await?;
        outcome
    }

    /// An agent dialed back with the console asked for by question `id` (of `host`): false
    /// when nobody waits for it (any more).
    pub fn console_dialed(&self, host: &str, id: &str, stream: Box<dyn ConsoleStream>) -> bool {
        self.console_dials.connect(id, host, stream)
    }

    /// Whether a console waits for `host`'s agent under question `id`.
    pub fn console_expected(&self, host: &str, id: &str) -> bool {
        self.console_dials.is_expected(id, host)
    }

    /// The unexpired authorization of a console token.
    pub async fn console_auth(&self, token: &str) -> Result<Option<ConsoleAuth>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::console_auth(
            &mut conn,
            &token_hash(token),
            ferrostack_store::now_micros(),
        )
        .await?)
    }

    /// What the console page of `token` shows: its authorization and its server, while both
    /// exist (the token unexpired, the server not deleted).
    pub async fn console_session(&self, token: &str) -> Result<Option<(ConsoleAuth, Instance)>> {
        let Some(auth) = self.console_auth(token).await? else {
            return Ok(None);
        };
        let mut conn = self.db.pool.acquire().await?;
        let inst = instances::get(&mut conn, &auth.instance_uuid, false).await?;
        Ok(inst.map(|i| (auth, i)))
    }
}
