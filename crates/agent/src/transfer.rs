//! Image data between a controller and a host's file, the same for every controller link.

use std::path::Path;

use ferrostack_agent_api::LinkError;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

/// Writes every chunk of `data` to `dest` (created or truncated) and syncs it to disk; a
/// chunk that cannot be read becomes `read_error(e)`.
pub async fn write_stream<S, B, E>(
    dest: &Path,
    mut data: S,
    read_error: impl Fn(E) -> LinkError,
) -> Result<(), LinkError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let write = |e: std::io::Error| LinkError::transport(format!("writing {}", dest.display()), e);
    let mut file = tokio::fs::File::create(dest).await.map_err(write)?;
    while let Some(chunk) = data.next().await {
        file.write_all(chunk.map_err(&read_error)?.as_ref())
            .await
            .map_err(write)?;
    }
    file.sync_all().await.map_err(write)
}
