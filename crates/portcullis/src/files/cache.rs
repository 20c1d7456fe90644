//! Small files kept in memory, checked against the disk at most every `revalidate` (nginx's
//! `open_file_cache_valid`), evicted least-recently-used beyond a byte budget. A hit costs no
//! system call and no blocking-pool hop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderValue;

use super::compress::Encoding;
use super::mime::Kind;
use super::Validators;

/// One file's bytes and everything its responses need.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The file on disk (for an index, the index file).
    pub(crate) path: PathBuf,
    pub(crate) bytes: Bytes,
    pub(crate) validators: Validators,
    pub(crate) kind: Kind,
    /// Compressed bytes per coding, indexed like [`Encoding::ALL`]: a fresher precompressed
    /// sibling read at load, or compressed on first use; `None` when not smaller.
    variants: [OnceLock<Option<Bytes>>; 3],
    /// Milliseconds since the cache's epoch of the last check against the disk.
    checked: AtomicU64,
    /// The cache's clock when last used, for eviction.
    used: AtomicU64,
}

impl Entry {
    pub(crate) fn new(path: PathBuf, bytes: Bytes, validators: Validators, kind: Kind) -> Self {
        Self {
            path,
            bytes,
            validators,
            kind,
            variants: Default::default(),
            checked: AtomicU64::new(0),
            used: AtomicU64::new(0),
        }
    }

    /// Sets a coding's bytes from a precompressed sibling file.
    pub(crate) fn set_precompressed(&self, encoding: Encoding, bytes: Bytes) {
        let _ = self.variants[encoding.index()].set(Some(bytes));
    }

    /// The bytes in `encoding`, compressing them on first use (the cost is counted in
    /// `cache`); `None` when that coding is not smaller.
    pub(crate) fn variant(&self, encoding: Encoding, cache: Option<&Cache>) -> Option<Bytes> {
        self.variants[encoding.index()]
            .get_or_init(|| {
                let packed = encoding.compress(&self.bytes)?;
                if let Some(cache) = cache {
                    cache.grew(packed.len());
                }
                Some(packed)
            })
            .clone()
    }

    fn size(&self) -> usize {
        self.bytes.len()
            + self
                .variants
                .iter()
                .filter_map(|v| v.get().and_then(|b| b.as_ref().map(Bytes::len)))
                .sum::<usize>()
    }
}

/// The cache: path → entry, a byte budget and the revalidation interval.
#[derive(Debug)]
pub(crate) struct Cache {
    max_bytes: usize,
    revalidate: Duration,
    epoch: Instant,
    clock: AtomicU64,
    map: Mutex<Map>,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<Box<str>, Arc<Entry>>,
    bytes: usize,
}

impl Cache {
    pub(crate) fn new(max_bytes: usize, revalidate: Duration) -> Self {
        Self {
            max_bytes,
            revalidate,
            epoch: Instant::now(),
            clock: AtomicU64::new(1),
            map: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock leaves the map consistent (single inserts, removes).
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for a request path, if cached.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let entry = self.lock().entries.get(key).cloned()?;
        entry.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(entry)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether the entry was checked against the disk recently enough to be served as is.
    pub(crate) fn is_fresh(&self, entry: &Entry) -> bool {
        self.now_ms()
            .saturating_sub(entry.checked.load(Ordering::Relaxed))
            < self.revalidate.as_millis() as u64
    }

    /// Checks the entry against the disk: unchanged (same size and modification time) → fresh
    /// again and `true`.
    pub(crate) fn revalidate(&self, entry: &Entry) -> bool {
        let unchanged = std::fs::metadata(&entry.path).is_ok_and(|meta| {
            meta.is_file()
                && meta.len() == entry.bytes.len() as u64
                && meta.modified().ok() == Some(entry.validators.modified)
        });
        if unchanged {
            entry.checked.store(self.now_ms(), Ordering::Relaxed);
        }
        unchanged
    }

    /// Caches `entry` for `key`, evicting the least recently used beyond the budget. An entry
    /// larger than a quarter of the budget is not cached.
    pub(crate) fn insert(&self, key: &str, entry: &Arc<Entry>) {
        let size = entry.size();
        if size > self.max_bytes / 4 {
            return;
        }
        entry.checked.store(self.now_ms(), Ordering::Relaxed);
        entry.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut map = self.lock();
        if let Some(old) = map.entries.insert(key.into(), entry.clone()) {
            map.bytes -= old.size().min(map.bytes);
        }
        map.bytes += size;
        self.evict(&mut map);
    }

    pub(crate) fn remove(&self, key: &str) {
        let mut map = self.lock();
        if let Some(old) = map.entries.remove(key) {
            map.bytes -= old.size().min(map.bytes);
        }
    }

    /// A cached entry grew by a compressed variant.
    fn grew(&self, by: usize) {
        let mut map = self.lock();
        map.bytes += by;
        self.evict(&mut map);
    }

    fn evict(&self, map: &mut Map) {
        while map.bytes > self.max_bytes {
            let Some(victim) = map
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            else {
                map.bytes = 0;
                return;
            };
            if let Some(old) = map.entries.remove(&victim) {
                map.bytes -= old.size().min(map.bytes);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// `modified` as an HTTP date value.
pub(crate) fn http_date(modified: SystemTime) -> Option<HeaderValue> {
    HeaderValue::from_str(&httpdate::fmt_http_date(modified)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Arc<Entry> {
        let modified = SystemTime::UNIX_EPOCH;
        Arc::new(Entry::new(
            PathBuf::from("/nowhere"),
            Bytes::from(vec![b'x'; n]),
            Validators::new(n as u64, modified).unwrap(),
            super::super::mime::kind_of(std::path::Path::new("a.txt")),
        ))
    }

    #[test]
    fn the_budget_evicts_the_least_recently_used() {
        let cache = Cache::new(4000, Duration::from_secs(1));
        cache.insert("/a", &entry(900));
        cache.insert("/b", &entry(900));
        cache.insert("/c", &entry(900));
        assert!(cache.get("/a").is_some()); // a is now the most recent
        cache.insert("/d", &entry(900));
        cache.insert("/e", &entry(900));
        assert!(cache.bytes() <= 4000);
        assert!(cache.get("/b").is_none(), "b was the least recently used");
        assert!(cache.get("/a").is_some());
        cache.insert("/big", &entry(1500));
        assert!(cache.get("/big").is_none(), "over a quarter of the budget");
    }
}
