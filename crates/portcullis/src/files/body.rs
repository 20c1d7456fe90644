//! The response body of [`StaticFiles`](super::StaticFiles): bytes already in memory (a small
//! file, a listing, an error page), or a large file read a chunk at a time as it is sent.
//!
//! A chunk already in the page cache is read on the runtime's thread (Linux's
//! `preadv2(RWF_NOWAIT)` returns it or says it would wait); only a chunk that must come from
//! the disk goes to the blocking pool. One buffer serves every chunk of a response: hyper has
//! written and dropped a chunk by the time it asks for the next, so the buffer is reclaimed.

use std::fmt;
use std::fs::File;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

/// How much of a large file one read takes: small enough to stay in the CPU's cache between
/// the read and the encryption.
const CHUNK: usize = 64 * 1024;

/// A static-file response body.
pub struct FileBody(Inner);

enum Inner {
    Full(Option<Bytes>),
    File(Box<FileReader>),
}

struct FileReader {
    /// `None` while a blocking read has it.
    file: Option<File>,
    /// Where the next chunk starts in the file.
    offset: u64,
    remaining: u64,
    buf: BytesMut,
    pending: Option<JoinHandle<io::Result<(File, BytesMut)>>>,
    /// Whether to try a page-cache read on the runtime's thread first.
    try_cached: bool,
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
            offset,
            remaining: len,
            buf: BytesMut::new(),
            pending: None,
            try_cached: cfg!(target_os = "linux"),
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
        if let Some(pending) = &mut self.pending {
            let joined = std::task::ready!(Pin::new(pending).poll(cx));
            self.pending = None;
            let (file, buf) = match joined {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                Err(e) => return Poll::Ready(Some(Err(io::Error::other(e)))),
            };
            self.file = Some(file);
            self.buf = buf;
            return Poll::Ready(Some(self.take_chunk()));
        }
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let Some(file) = self.file.take() else {
            return Poll::Ready(None);
        };
        let want = self.remaining.min(CHUNK as u64) as usize;
        // Reclaims the previous chunk's memory when hyper has dropped it.
        self.buf.reserve(want);
        self.buf.resize(want, 0);
        if self.try_cached {
            match read_cached(&file, &mut self.buf, self.offset) {
                Cached::Read(n) => {
                    self.buf.truncate(n);
                    self.file = Some(file);
                    return Poll::Ready(Some(self.take_chunk()));
                }
                Cached::Failed(e) => return Poll::Ready(Some(Err(e))),
                Cached::WouldWait => {}
                Cached::Unsupported => self.try_cached = false,
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        let offset = self.offset;
        let mut pending = tokio::task::spawn_blocking(move || {
            let n = read_at(&file, &mut buf, offset)?;
            buf.truncate(n);
            Ok((file, buf))
        });
        // Registers the waker (the read has not finished this soon, or rarely has).
        match Pin::new(&mut pending).poll(cx) {
            Poll::Pending => {
                self.pending = Some(pending);
                Poll::Pending
            }
            Poll::Ready(joined) => {
                let (file, buf) = match joined {
                    Ok(Ok(done)) => done,
                    Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Err(e) => return Poll::Ready(Some(Err(io::Error::other(e)))),
                };
                self.file = Some(file);
                self.buf = buf;
                Poll::Ready(Some(self.take_chunk()))
            }
        }
    }

    /// The bytes just read as the next frame; none read means the file shrank under us, and
    /// the length promised cannot be kept.
    fn take_chunk(&mut self) -> io::Result<Frame<Bytes>> {
        if self.buf.is_empty() {
            self.remaining = 0;
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let chunk = self.buf.split().freeze();
        self.offset += chunk.len() as u64;
        self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        Ok(Frame::data(chunk))
    }
}

/// What a read that must not wait for the disk did.
enum Cached {
    /// This many bytes (zero at the end of the file).
    Read(usize),
    /// Some of the bytes are not in the page cache.
    WouldWait,
    /// This kernel or file system cannot say.
    Unsupported,
    Failed(io::Error),
}

#[cfg(target_os = "linux")]
fn read_cached(file: &File, buf: &mut [u8], offset: u64) -> Cached {
    use rustix::io::{preadv2, Errno, ReadWriteFlags};
    loop {
        let mut slices = [io::IoSliceMut::new(buf)];
        return match preadv2(file, &mut slices, offset, ReadWriteFlags::NOWAIT) {
            Ok(n) => Cached::Read(n),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => Cached::WouldWait,
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => Cached::Unsupported,
            Err(e) => Cached::Failed(e.into()),
        };
    }
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _buf: &mut [u8], _offset: u64) -> Cached {
    Cached::Unsupported
}

/// Fills `buf` from `offset` or up to the end of the file; returns how much it read.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_once_at(file, &mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(unix)]
fn read_once_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_once_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn numbered(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    async fn collect(body: FileBody) -> io::Result<Vec<u8>> {
        Ok(body.collect().await?.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn a_range_reads_the_same_from_the_page_cache_and_from_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = numbered(3 * CHUNK + 123);
        std::fs::write(&path, &data).unwrap();
        for cached in [true, false] {
            let body = FileBody::file(File::open(&path).unwrap(), 1000, 2 * CHUNK as u64 + 7);
            let FileBody(Inner::File(mut reader)) = body else {
                unreachable!()
            };
            reader.try_cached = cached && reader.try_cached;
            let got = collect(FileBody(Inner::File(reader))).await.unwrap();
            assert_eq!(got, &data[1000..1000 + 2 * CHUNK + 7], "cached {cached}");
        }
    }

    #[tokio::test]
    async fn a_file_that_shrinks_while_sent_ends_the_body_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, numbered(4 * CHUNK)).unwrap();
        let mut body = FileBody::file(File::open(&path).unwrap(), 0, 4 * CHUNK as u64);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), CHUNK);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(CHUNK as u64 + 10)
            .unwrap();
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second.len(), 10);
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
