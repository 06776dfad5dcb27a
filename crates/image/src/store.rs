//! Image data stores. A store receives the upload as a stream into a staging file (hashing and
//! keeping the head and tail for format inspection as it goes), then either commits it (fsync,
//! atomic rename) or discards it. Nothing partial is ever visible under an image's location.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use md5::{Digest, Md5};
use sha2::Sha512;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::format::{HEAD_LEN, TAIL_LEN};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("image data is larger than the {limit} bytes allowed")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted")]
    Interrupted(#[source] io::Error),
    #[error("store I/O on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no data at location {0}")]
    Missing(String),
}

/// An upload written to a staging file, not yet visible.
#[derive(Debug)]
pub struct Staged {
    pub path: PathBuf,
    pub size: u64,
    pub md5: String,
    pub sha512: String,
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

pub type ByteStream = BoxStream<'static, Result<Bytes, io::Error>>;

/// A store of image data, addressed by location strings it hands out.
#[async_trait::async_trait]
pub trait ImageStore: Send + Sync {
    /// The store id shown in `/v2/info/stores`.
    fn id(&self) -> &str;
    /// Streams `body` into a staging file, refusing more than `limit` bytes.
    async fn stage(
        &self,
        image_id: &str,
        body: ByteStream,
        limit: u64,
    ) -> Result<Staged, StoreError>;
    /// Makes a staged upload the data of `image_id`; returns its location.
    async fn commit(&self, image_id: &str, staged: Staged) -> Result<String, StoreError>;
    /// Throws a staged upload away.
    async fn discard(&self, staged: Staged);
    /// Reads `[start, end)` of the data at `location` (the whole of it without a range).
    async fn read(
        &self,
        location: &str,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StoreError>;
    /// Deletes the data at `location` (no error when already gone).
    async fn delete(&self, location: &str) -> Result<(), StoreError>;
    /// Removes staging leftovers of a crash (called at start).
    async fn clean_staging(&self) -> Result<(), StoreError>;
}

/// Bytes handed to the hashing/writing threads at a time.
const BATCH: usize = 1 << 20;
/// Batches in flight between the network and the threads (bounds memory per upload).
const IN_FLIGHT: usize = 8;

/// What the staging pipeline produced once its input is closed.
struct Digested {
    file: std::fs::File,
    md5: Md5,
    sha: Sha512,
}

/// Starts the upload pipeline: the network side sends batches of chunks; one thread computes
/// sha512 and writes (one `writev` per batch, no copy), another computes md5. Three stages
/// run at once, so a large upload is bound by the slowest of them rather than their sum.
fn start_pipeline(
    file: std::fs::File,
) -> (
    tokio::sync::mpsc::Sender<Vec<Bytes>>,
    std::thread::JoinHandle<io::Result<Digested>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(IN_FLIGHT);
    let handle = std::thread::spawn(move || {
        let (md5_tx, md5_rx) = std::sync::mpsc::sync_channel::<Vec<Bytes>>(IN_FLIGHT);
        let md5_thread = std::thread::spawn(move || {
            let mut md5 = Md5::new();
            for batch in md5_rx {
                for c in &batch {
                    md5.update(c);
                }
            }
            md5
        });
        let mut file = file;
        let mut sha = Sha512::new();
        let mut result = Ok(());
        while let Some(batch) = rx.blocking_recv() {
            for c in &batch {
                sha.update(c);
            }
            if let Err(e) = write_all_vectored(&mut file, &batch) {
                result = Err(e);
                break;
            }
            if md5_tx.send(batch).is_err() {
                result = Err(io::Error::other("md5 thread gone"));
                break;
            }
        }
        drop(md5_tx);
        let md5 = md5_thread
            .join()
            .map_err(|_| io::Error::other("md5 thread panicked"))?;
        result?;
        file.sync_all()?;
        Ok(Digested { file, md5, sha })
    });
    (tx, handle)
}

/// Writes every chunk of `batch`, with as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut std::fs::File, batch: &[Bytes]) -> io::Result<()> {
    use std::io::{IoSlice, Write};
    let mut idx = 0; // first chunk not fully written
    let mut off = 0; // bytes of it already written
    while idx < batch.len() {
        // At most IOV_MAX (1024) slices per call, however small the client's chunks were.
        let last = batch.len().min(idx + 1024);
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(last - idx);
        slices.push(IoSlice::new(&batch[idx][off..]));
        for c in &batch[idx + 1..last] {
            slices.push(IoSlice::new(c));
        }
        let mut n = match file.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while idx < batch.len() && n >= batch[idx].len() - off {
            n -= batch[idx].len() - off;
            idx += 1;
            off = 0;
        }
        off += n;
    }
    Ok(())
}

/// The `file` store: `<dir>/images/<id>` with staging files in `<dir>/staging`.
pub struct FileStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl FileStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let dir = dir.into();
        for sub in ["images", "staging"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(FileStore { dir })
    }

    fn path_of(&self, location: &str) -> Result<PathBuf, StoreError> {
        let rel = location
            .strip_prefix("file://")
            .ok_or_else(|| StoreError::Missing(location.to_string()))?;
        let p = PathBuf::from(rel);
        // Only locations inside this store's images directory are ever read or deleted.
        if p.parent() != Some(self.dir.join("images").as_path()) {
            return Err(StoreError::Missing(location.to_string()));
        }
        Ok(p)
    }
}

#[async_trait::async_trait]
impl ImageStore for FileStore {
    fn id(&self) -> &str {
        "file"
    }

    async fn stage(
        &self,
        image_id: &str,
        mut body: ByteStream,
        limit: u64,
    ) -> Result<Staged, StoreError> {
        let path = self
            .dir
            .join("staging")
            .join(format!("{image_id}.{}", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        let (tx, pipeline) = start_pipeline(file);
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(HEAD_LEN);
        let mut tail: Vec<u8> = Vec::with_capacity(TAIL_LEN * 2);
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0usize;
        let received: Result<(), StoreError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(StoreError::Interrupted)?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(StoreError::TooLarge { limit });
                }
                if head.len() < HEAD_LEN {
                    let n = (HEAD_LEN - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..n]);
                }
                tail.extend_from_slice(&chunk[chunk.len().saturating_sub(TAIL_LEN)..]);
                if tail.len() > TAIL_LEN {
                    tail.drain(..tail.len() - TAIL_LEN);
                }
                batch_len += chunk.len();
                batch.push(chunk);
                if batch_len >= BATCH {
                    batch_len = 0;
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
            Ok(())
        }
        .await;
        // Closing the channel lets the pipeline finish (or stop early after an error).
        drop(tx);
        let written = tokio::task::spawn_blocking(move || pipeline.join())
            .await
            .map_err(|e| StoreError::Interrupted(io::Error::other(e)))
            .and_then(|j| {
                j.map_err(|_| StoreError::Interrupted(io::Error::other("store thread panicked")))
            })
            .and_then(|r| r.map_err(io_err(&path)));
        let digested = match (received, written) {
            (Ok(()), Ok(d)) => d,
            (Err(e), _) | (Ok(()), Err(e)) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e);
            }
        };
        let Digested { file, md5, sha } = digested;
        drop(file);
        Ok(Staged {
            path,
            size,
            md5: hex(&md5.finalize()),
            sha512: hex(&sha.finalize()),
            head,
            tail,
        })
    }

    async fn commit(&self, image_id: &str, staged: Staged) -> Result<String, StoreError> {
        let images = self.dir.join("images");
        let dst = images.join(image_id);
        tokio::fs::rename(&staged.path, &dst)
            .await
            .map_err(io_err(&dst))?;
        // fsync the directory so the rename survives a crash.
        let d = tokio::fs::File::open(&images)
            .await
            .map_err(io_err(&images))?;
        d.sync_all().await.map_err(io_err(&images))?;
        Ok(format!("file://{}", dst.display()))
    }

    async fn discard(&self, staged: Staged) {
        let _ = tokio::fs::remove_file(&staged.path).await;
    }

    async fn read(
        &self,
        location: &str,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StoreError> {
        let path = self.path_of(location)?;
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|_| StoreError::Missing(location.to_string()))?;
        let (start, end) = match range {
            Some(r) => r,
            None => (0, f.metadata().await.map_err(io_err(&path))?.len()),
        };
        f.seek(io::SeekFrom::Start(start))
            .await
            .map_err(io_err(&path))?;
        let reader = f.take(end.saturating_sub(start));
        Ok(tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).boxed())
    }

    async fn delete(&self, location: &str) -> Result<(), StoreError> {
        let path = self.path_of(location)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    async fn clean_staging(&self) -> Result<(), StoreError> {
        let staging = self.dir.join("staging");
        let mut rd = tokio::fs::read_dir(&staging)
            .await
            .map_err(io_err(&staging))?;
        while let Some(e) = rd.next_entry().await.map_err(io_err(&staging))? {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: Vec<&'static [u8]>) -> ByteStream {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
    }

    #[tokio::test]
    async fn stage_commit_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path()).unwrap();
        let staged = s
            .stage("img1", stream(vec![b"hello ", b"world"]), 100)
            .await
            .unwrap();
        assert_eq!(staged.size, 11);
        assert_eq!(staged.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(staged.head, b"hello world");
        let loc = s.commit("img1", staged).await.unwrap();
        let got: Vec<Bytes> = s
            .read(&loc, Some((6, 11)))
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(got.concat(), b"world");
        s.delete(&loc).await.unwrap();
        assert!(s.read(&loc, None).await.is_err());
        s.delete(&loc).await.unwrap();
    }

    #[tokio::test]
    async fn many_tiny_chunks_hash_and_write_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path()).unwrap();
        // 300,000 one-byte chunks: more than IOV_MAX slices per batch and several batches.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Result<Bytes, io::Error>> = data
            .iter()
            .map(|b| Ok(Bytes::copy_from_slice(&[*b])))
            .collect();
        let staged = s
            .stage("tiny", futures::stream::iter(chunks).boxed(), 1 << 30)
            .await
            .unwrap();
        assert_eq!(staged.size, data.len() as u64);
        assert_eq!(std::fs::read(&staged.path).unwrap(), data);
        assert_eq!(staged.md5, hex(&Md5::digest(&data)));
        assert_eq!(staged.sha512, hex(&Sha512::digest(&data)));
    }

    #[tokio::test]
    async fn too_large_and_interrupted_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path()).unwrap();
        let e = s
            .stage("img", stream(vec![b"0123456789"]), 5)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::TooLarge { limit: 5 }));
        let broken: ByteStream = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")),
        ])
        .boxed();
        assert!(matches!(
            s.stage("img", broken, 100).await,
            Err(StoreError::Interrupted(_))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("staging"))
                .unwrap()
                .count(),
            0
        );
        assert!(
            s.read("file:///etc/passwd", None).await.is_err(),
            "only the store's own files"
        );
    }
}
