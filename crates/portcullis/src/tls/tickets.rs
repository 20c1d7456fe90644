//! Session resumption state: stateless tickets under Node's 48-byte `ticketKeys`, and a
//! bounded, expiring server-side session cache.
//!
//! A ticket is `key name (16) ‖ nonce (12) ‖ AES-128-GCM(aes key, nonce, issued-at ‖ state,
//! aad = key name)`. Node's 48-byte key is 16 bytes of name, 16 of HMAC secret and 16 of AES key;
//! GCM authenticates, so the HMAC secret is not needed and is ignored. Servers given the same
//! key file decrypt each other's tickets: that is how a fleet behind a load balancer keeps
//! resumption.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, NONCE_LEN};
use rustls::server::{ProducesTickets, StoresServerSessions};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const KEY_LEN: usize = 48;
const NAME_LEN: usize = 16;

/// Ticket keys in Node's format: one or more 48-byte keys (16-byte name, 16-byte HMAC secret,
/// 16-byte AES key). The first key issues tickets; all of them decrypt, so a rotation that
/// prepends a new key keeps the tickets made under the old one valid.
///
/// Keys you give are yours to rotate: a ticket key that never changes lets anyone who later
/// obtains it decrypt every recorded session resumed under it. Rotate at least daily
/// ([`rotate`](Self::rotate) and [`save`](Self::save), or `portcullis tickets rotate FILE`):
/// the new key first, the previous ones after it for decryption, the oldest dropped; then reload
/// (`portcullis serve` reloads when the file changes; the library:
/// [`ServerHandle::set_tls_config`](crate::ServerHandle::set_tls_config)).
/// Without keys of your own, the server makes a random key and replaces it every session
/// timeout, keeping the previous one for decryption only.
#[derive(Clone)]
pub struct TicketKeys {
    keys: Vec<Zeroizing<[u8; KEY_LEN]>>,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKeys")
            .field("count", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// Keys from raw bytes: a multiple of 48.
    ///
    /// # Errors
    /// Empty input or a length that is not a multiple of 48.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() || bytes.len() % KEY_LEN != 0 {
            return Err(Error::config(format!(
                "ticket keys must be 48 bytes each (16-byte name, 16-byte HMAC secret, 16-byte AES key); got {} bytes",
                bytes.len()
            )));
        }
        let keys = bytes
            .chunks_exact(KEY_LEN)
            .map(|chunk| {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                key.copy_from_slice(chunk);
                key
            })
            .collect();
        Ok(Self { keys })
    }

    /// Reads keys from a file of raw bytes (e.g. `head -c 48 /dev/urandom > ticket.keys`).
    ///
    /// # Errors
    /// The file cannot be read or its length is not a multiple of 48; the error names it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = super::keyfile::read_bounded(path, super::keyfile::MAX_SMALL)?;
        Self::from_bytes(&bytes).map_err(|e| e.with_path(path))
    }

    /// One fresh random key.
    pub fn random() -> Self {
        Self {
            keys: vec![random_key()],
        }
    }

    /// A rotation: a fresh random key first (it issues tickets from now on), the current ones
    /// after it (they still decrypt the tickets they issued), and no more than `keep` keys in
    /// all, the oldest dropped (`keep` is at least 2: the key that issued until now must stay).
    ///
    /// Tickets live for the session timeout (300 s by default), so rotating more often than
    /// that with `keep` = 2 would refuse tickets still valid. A key that leaks lets its holder
    /// decrypt the sessions resumed under it, for as long as it is kept: rotate often (daily or
    /// hourly) and keep few.
    pub fn rotate(&mut self, keep: usize) {
        self.keys.insert(0, random_key());
        self.keys.truncate(keep.max(2));
    }

    /// Writes the keys to `path` in the format [`from_file`](Self::from_file) reads, replacing
    /// it atomically (a temporary file in the same directory, readable by its owner only, then
    /// renamed over it): a server that reloads when the file changes never reads half a key.
    ///
    /// # Errors
    /// The file cannot be written or renamed; the error names it.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = (|| {
            let mut file = options.open(&temp)?;
            for key in &self.keys {
                std::io::Write::write_all(&mut file, &key[..])?;
            }
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io("write", e));
        }
        // The rename itself is durable once the directory is (best effort: not every system
        // lets a directory be opened for this).
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: there is at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Encrypts and decrypts tickets under [`TicketKeys`], or under random keys it rotates itself.
pub(crate) struct Ticketer {
    keys: std::sync::RwLock<Vec<([u8; NAME_LEN], LessSafeKey)>>,
    lifetime: Duration,
    /// For random keys: a new key every `lifetime`, the previous one kept to decrypt.
    rotation: Option<Mutex<u64>>,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketer")
            .field("lifetime", &self.lifetime)
            .field("rotating", &self.rotation.is_some())
            .finish_non_exhaustive()
    }
}

impl Ticketer {
    pub(crate) fn new(keys: &TicketKeys, lifetime: Duration) -> Result<Self> {
        let keys = keys
            .keys
            .iter()
            .map(|key| ticket_key(key))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            keys: std::sync::RwLock::new(keys),
            lifetime,
            rotation: None,
        })
    }

    /// Random keys, a new one every `lifetime` (tickets stay valid for `lifetime`, so the key
    /// before the current one is kept to decrypt and the one before that is forgotten: a key
    /// taken from memory later opens no ticket older than two lifetimes).
    pub(crate) fn rotating(lifetime: Duration) -> Result<Self> {
        let first = ticket_key(&TicketKeys::random().keys[0])?;
        Ok(Self {
            keys: std::sync::RwLock::new(vec![first]),
            lifetime,
            rotation: Some(Mutex::new(now_secs())),
        })
    }

    /// Rotates when the current key has issued for a whole lifetime.
    fn rotate_if_due(&self, now: u64) {
        let Some(rotation) = &self.rotation else {
            return;
        };
        let mut since = rotation.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(*since) < self.lifetime.as_secs().max(1) {
            return;
        }
        let Ok(fresh) = ticket_key(&TicketKeys::random().keys[0]) else {
            return;
        };
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.insert(0, fresh);
        keys.truncate(2);
        *since = now;
    }

    fn encrypt_at(&self, plain: &[u8], now: u64) -> Option<Vec<u8>> {
        self.rotate_if_due(now);
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let (name, key) = keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(NAME_LEN + NONCE_LEN + 8 + plain.len() + 16);
        out.extend_from_slice(name);
        out.extend_from_slice(&nonce);
        let mut sealed = Vec::with_capacity(8 + plain.len() + 16);
        sealed.extend_from_slice(&now.to_be_bytes());
        sealed.extend_from_slice(plain);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&name[..]),
            &mut sealed,
        )
        .ok()?;
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt_at(&self, cipher: &[u8], now: u64) -> Option<Vec<u8>> {
        if cipher.len() < NAME_LEN + NONCE_LEN + 8 + 16 {
            return None;
        }
        let (name, rest) = cipher.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let (_, key) = keys.iter().find(|(n, _)| n[..] == *name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = key.open_in_place(nonce, Aad::from(name), &mut buf).ok()?;
        let (issued, state) = plain.split_at(8);
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        if now.saturating_sub(issued) > self.lifetime.as_secs() {
            return None;
        }
        Some(state.to_vec())
    }
}

/// The name and AES key of one 48-byte key.
fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // aws-lc's RNG only fails if the OS RNG is broken, and then no TLS works at all.
    aws_lc_rs::rand::fill(&mut key[..]).expect("system random number generator");
    key
}

fn ticket_key(key: &[u8; KEY_LEN]) -> Result<([u8; NAME_LEN], LessSafeKey)> {
    let mut name = [0u8; NAME_LEN];
    name.copy_from_slice(&key[..NAME_LEN]);
    let aes = UnboundKey::new(&AES_128_GCM, &key[32..48])
        .map_err(|_| Error::config("unusable ticket key"))?;
    Ok((name, LessSafeKey::new(aes)))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime.as_secs().min(u64::from(u32::MAX)) as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.encrypt_at(plain, now_secs())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.decrypt_at(cipher, now_secs())
    }
}

/// The server-side session cache (session IDs, TLS 1.3 stateful tickets): at most `capacity`
/// entries, oldest evicted first, each valid for `timeout`.
pub(crate) struct SessionCache {
    inner: Mutex<CacheInner>,
    capacity: usize,
    timeout: Duration,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    order: VecDeque<Vec<u8>>,
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("capacity", &self.capacity)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    pub(crate) fn new(capacity: usize, timeout: Duration) -> Self {
        Self {
            inner: Mutex::new(CacheInner::default()),
            capacity,
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, stored: u64) -> bool {
        now_secs().saturating_sub(stored) <= self.timeout.as_secs()
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut inner = self.lock();
        if inner.map.insert(key.clone(), (value, now_secs())).is_none() {
            inner.order.push_back(key);
        }
        while inner.map.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        // Keys taken or replaced leave stale entries in `order`; bound it.
        if inner.order.len() > self.capacity.saturating_mul(2).max(16) {
            let CacheInner { map, order } = &mut *inner;
            order.retain(|k| map.contains_key(k));
        }
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.lock();
        let (value, stored) = inner.map.get(key)?;
        self.fresh(*stored).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (value, stored) = self.lock().map.remove(key)?;
        self.fresh(stored).then_some(value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_puts_a_new_key_first_and_drops_the_oldest_beyond_keep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticket.keys");
        let mut keys = TicketKeys::random();
        let first = keys.keys[0].clone();
        keys.save(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first[..]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
        keys.rotate(3);
        keys.save(&path).unwrap();
        let on_disk = TicketKeys::from_file(&path).unwrap();
        assert_eq!(on_disk.len(), 2);
        assert_eq!(
            on_disk.keys[1], first,
            "the previous key follows the new one"
        );
        assert_ne!(on_disk.keys[0], first);
        keys.rotate(3);
        keys.rotate(3);
        assert_eq!(keys.len(), 3);
        assert!(
            !keys.keys.contains(&first),
            "the oldest is dropped beyond keep"
        );
        keys.rotate(1);
        assert_eq!(keys.len(), 2, "the key that issued until now stays");
        // Nothing left behind but the file itself.
        keys.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn tickets_issued_before_a_rotation_still_open_after_it() {
        let mut keys = TicketKeys::random();
        let before = Ticketer::new(&keys, Duration::from_secs(300)).unwrap();
        let ticket = before.encrypt(b"session state").unwrap();
        keys.rotate(2);
        let after = Ticketer::new(&keys, Duration::from_secs(300)).unwrap();
        assert_eq!(after.decrypt(&ticket).unwrap(), b"session state");
        keys.rotate(2);
        let later = Ticketer::new(&keys, Duration::from_secs(300)).unwrap();
        assert!(later.decrypt(&ticket).is_none(), "its key has been dropped");
    }

    #[test]
    fn random_keys_rotate_every_lifetime_and_the_previous_key_still_decrypts() {
        let t = Ticketer::rotating(Duration::from_secs(100)).unwrap();
        let start = now_secs();
        let first = t.encrypt_at(b"one", start).unwrap();
        // Still the same key before a lifetime has passed.
        let same = t.encrypt_at(b"two", start + 99).unwrap();
        assert_eq!(first[..NAME_LEN], same[..NAME_LEN]);
        // A lifetime later: a new key issues, the old one still opens its tickets.
        let second = t.encrypt_at(b"three", start + 100).unwrap();
        assert_ne!(first[..NAME_LEN], second[..NAME_LEN]);
        assert_eq!(t.decrypt_at(&same, start + 100).unwrap(), b"two");
        assert_eq!(t.decrypt_at(&second, start + 150).unwrap(), b"three");
        // Two rotations on, the first key is gone (its tickets had expired anyway).
        let third = t.encrypt_at(b"four", start + 200).unwrap();
        assert_ne!(second[..NAME_LEN], third[..NAME_LEN]);
        assert!(t.decrypt_at(&first, start + 200).is_none());
        assert_eq!(t.keys.read().unwrap().len(), 2);
        // Keys given by the user never change.
        let fixed = Ticketer::new(&TicketKeys::random(), Duration::from_secs(100)).unwrap();
        let a = fixed.encrypt_at(b"x", start).unwrap();
        let b = fixed.encrypt_at(b"y", start + 1000).unwrap();
        assert_eq!(a[..NAME_LEN], b[..NAME_LEN]);
    }

    #[test]
    fn tickets_round_trip_across_servers_sharing_keys() {
        let keys = TicketKeys::random();
        let a = Ticketer::new(&keys, Duration::from_secs(60)).unwrap();
        let b = Ticketer::new(&keys, Duration::from_secs(60)).unwrap();
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&ticket).unwrap(), b"session state");
        let other = Ticketer::new(&TicketKeys::random(), Duration::from_secs(60)).unwrap();
        assert!(other.decrypt(&ticket).is_none());
        let mut tampered = ticket.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(a.decrypt(&tampered).is_none());
    }

    #[test]
    fn rotation_keeps_old_tickets_and_issues_with_the_first_key() {
        let old = TicketKeys::random();
        let new = TicketKeys::random();
        let before = Ticketer::new(&old, Duration::from_secs(60)).unwrap();
        let ticket = before.encrypt(b"x").unwrap();
        let mut both = new.keys[0].to_vec();
        both.extend_from_slice(&old.keys[0][..]);
        let rotated = Ticketer::new(
            &TicketKeys::from_bytes(&both).unwrap(),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(rotated.decrypt(&ticket).unwrap(), b"x");
        let fresh = rotated.encrypt(b"y").unwrap();
        assert_eq!(&fresh[..16], &new.keys[0][..16]);
    }

    #[test]
    fn expired_tickets_are_refused() {
        let keys = TicketKeys::random();
        let t = Ticketer::new(&keys, Duration::ZERO).unwrap();
        let ticket = t.encrypt(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(t.decrypt(&ticket).is_none());
    }

    #[test]
    fn key_length_is_checked() {
        let err = TicketKeys::from_bytes(&[0u8; 10]).unwrap_err().to_string();
        assert!(err.contains("48 bytes"), "{err}");
        assert_eq!(TicketKeys::from_bytes(&[1u8; 96]).unwrap().len(), 2);
    }

    #[test]
    fn session_cache_is_bounded() {
        let cache = SessionCache::new(2, Duration::from_secs(60));
        for i in 0..3u8 {
            cache.put(vec![i], vec![i]);
        }
        assert!(cache.get(&[0]).is_none());
        assert_eq!(cache.get(&[2]).unwrap(), vec![2]);
        assert_eq!(cache.take(&[1]).unwrap(), vec![1]);
        assert!(cache.get(&[1]).is_none());
    }
}
