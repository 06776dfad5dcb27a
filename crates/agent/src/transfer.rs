//! Data between a controller and a host's file (images, snapshots, handed-over disks), the
//! same for every controller link.

use std::path::Path;

use ferrostack_agent_api::LinkError;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

/// Opens file `path` for a controller link to upload (a snapshot, a handed-over disk).
pub async fn open(path: &Path) -> Result<tokio::fs::File, LinkError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| LinkError::transport(format!("opening {}", path.display()), e))
}

/// Writes every chunk of `data` to `dest` (created or truncated) and syncs it to disk; a
/// chunk that cannot be read becomes `read_error(e)`.
pub async fn write_stream<S, B, E>(
    dest: &Path,
    data: S,
    read_error: impl Fn(E) -> LinkError,
) -> Result<(), LinkError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    write_stream_with(dest, data, read_error, |e| {
        LinkError::transport(format!("writing {}", dest.display()), e)
    })
    .await
}

/// As [`write_stream`], with the caller's own error for a failed write (the controller
/// keeping a disk a host hands over).
pub async fn write_stream_with<S, B, E, Er>(
    dest: &Path,
    mut data: S,
    read_error: impl Fn(E) -> Er,
    write_error: impl Fn(std::io::Error) -> Er,
) -> Result<(), Er>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut file = tokio::fs::File::create(dest).await.map_err(&write_error)?;
    while let Some(chunk) = data.next().await {
        file.write_all(chunk.map_err(&read_error)?.as_ref())
            .await
            .map_err(&write_error)?;
    }
    file.sync_all().await.map_err(&write_error)
}
