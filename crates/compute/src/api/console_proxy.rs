//! The console proxy, Nova's novncproxy and serialproxy in one: noVNC's files, and the
//! websocket (`/compute/console/websockify?token=...`) that carries a guest's VNC or serial
//! console. A token opens one connection and is gone (single use); the websocket needs no
//! Keystone token, the console token is the authorization, as with Nova.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::ApiError;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::State;
use crate::peers::consoles::ConsoleStream;
use crate::ComputeService;

pub fn routes(svc: &ComputeService) -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/console/websockify", get(websockify))
        .nest_service(
            "/console/novnc",
            tower_http::services::ServeDir::new(&svc.config.novnc_dir),
        )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn websockify(
    svc: State,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = q
        .token
        .ok_or_else(|| ApiError::unauthorized("The console token is missing."))?;
    let stream = svc.open_console(&token).await?;
    // noVNC asks for the `binary` subprotocol; a raw client asks for none.
    Ok(ws
        .protocols(["binary"])
        .on_upgrade(move |socket| bridge(socket, stream))
        .into_response())
}

/// Carries bytes between the websocket and the console until either side ends.
async fn bridge(socket: WebSocket, stream: Box<dyn ConsoleStream>) {
    let (mut from_console, mut to_console) = tokio::io::split(stream);
    let (mut to_client, mut from_client) = socket.split();
    let up = async {
        while let Some(Ok(msg)) = from_client.next().await {
            let bytes = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            if to_console.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match from_console.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = Message::Binary(buf[..n].to_vec().into());
                    if to_client.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_client.send(Message::Close(None)).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
