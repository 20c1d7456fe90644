//! The response body of [`StaticFiles`](super::StaticFiles): bytes already in memory (a small
//! file, a listing, an error page), or a large file read in chunks on the blocking pool.

use std::fmt;
use std::fs::File;
use std::future::Future as _;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

/// How much of a large file one blocking read takes.
const CHUNK: usize = 256 * 1024;

/// A static-file response body.
pub struct FileBody(Inner);

enum Inner {
    Full(Option<Bytes>),
    File(Box<FileReader>),
}

struct FileReader {
    file: Option<File>,
    /// Where to start (a range), applied by the first read.
    seek: Option<u64>,
    remaining: u64,
    pending: Option<JoinHandle<io::Result<(File, Bytes)>>>,
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Full(data) => f
                .debug_struct("FileBody")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Inner::File(reader) => f
                .debug_struct("FileBody")
                .field("remaining", &reader.remaining)
                .finish(),
        }
    }
}

impl FileBody {
    pub(crate) fn full(data: Bytes) -> Self {
        Self(Inner::Full((!data.is_empty()).then_some(data)))
    }

    pub(crate) fn empty() -> Self {
        Self(Inner::Full(None))
    }

    /// `len` bytes of `file` from `offset`.
    pub(crate) fn file(file: File, offset: u64, len: u64) -> Self {
        Self(Inner::File(Box::new(FileReader {
            file: Some(file),
            seek: (offset > 0).then_some(offset),
            remaining: len,
            pending: None,
        })))
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().0 {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::File(reader) => reader.poll_chunk(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(data) => data.is_none(),
            Inner::File(reader) => reader.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::File(reader) => SizeHint::with_exact(reader.remaining),
        }
    }
}

impl FileReader {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        loop {
            if let Some(pending) = &mut self.pending {
                let joined = std::task::ready!(Pin::new(pending).poll(cx));
                self.pending = None;
                let (file, chunk) = match joined {
                    Ok(Ok(done)) => done,
                    Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Err(e) => return Poll::Ready(Some(Err(io::Error::other(e)))),
                };
                if chunk.is_empty() {
                    // The file shrank under us: the length promised cannot be kept.
                    self.remaining = 0;
                    return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())));
                }
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                self.file = Some(file);
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            let Some(mut file) = self.file.take() else {
                return Poll::Ready(None);
            };
            let seek = self.seek.take();
            let want = self.remaining.min(CHUNK as u64) as usize;
            self.pending = Some(tokio::task::spawn_blocking(move || {
                if let Some(offset) = seek {
                    file.seek(SeekFrom::Start(offset))?;
                }
                let mut buf = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    match file.read(&mut buf[filled..])? {
                        0 => break,
                        n => filled += n,
                    }
                }
                buf.truncate(filled);
                Ok((file, Bytes::from(buf)))
            }));
        }
    }
}
