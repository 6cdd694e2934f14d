//! The cache of validated tokens: a token seen again before it expires is not verified again.
//!
//! Only tokens that passed every check enter ([`TokenCache::insert`] is called by the validator
//! after success, never before). The cache holds at most `capacity` entries; a full cache drops
//! its expired entries first and then its oldest ones, so a flood of distinct valid tokens
//! replaces entries but never grows it, and a flood of invalid ones never reaches it.
//! Entries are keyed by the SHA-256 digest of the token, so the cache holds no bearer token
//! that could be replayed from a memory dump.
//! Changing the keys an authenticator trusts empties its cache ([`TokenCache::clear`]): a token
//! whose key was removed is refused at once, not when it expires.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The digest a token is cached under.
type Digest = [u8; 32];

/// A validated token's result.
#[derive(Debug, Clone)]
struct Entry {
    /// The identity the token named.
    name: String,
    /// Seconds since the epoch after which the token is no longer accepted (its `exp` plus the
    /// leeway the validator allowed).
    valid_until: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Digest, Entry>,
    /// Insertion order, for eviction; each digest of `entries` appears once.
    order: VecDeque<Digest>,
}

/// A bounded map from validated token to identity.
#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl TokenCache {
    /// An empty cache of at most `capacity` entries (0 turns caching off).
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The digest `token` is cached under.
    pub fn digest(token: &str) -> Digest {
        // The streaming hasher runs SHA-256 directly; the one-shot `sha256` goes through
        // OpenSSL 3's EVP_Q_digest, which looks the algorithm up again at every call (a
        // quarter of an authenticated Ping's daemon time, measured with bench/auth.sh).
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(token.as_bytes());
        hasher.finish()
    }

    /// The identity of a token validated earlier that is still valid at `now` (seconds since
    /// the epoch). An expired entry is removed.
    pub fn get(&self, digest: &Digest, now: u64) -> Option<String> {
        let mut inner = self.lock();
        let entry = inner.entries.get(digest)?;
        if now <= entry.valid_until {
            return Some(entry.name.clone());
        }
        inner.entries.remove(digest);
        inner.order.retain(|d| d != digest);
        None
    }

    /// Remembers a validated token's identity until `valid_until` (seconds since the epoch).
    pub fn insert(&self, digest: Digest, name: String, valid_until: u64, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.entries.contains_key(&digest) {
            return;
        }
        if inner.entries.len() >= self.capacity {
            let Inner { entries, order } = &mut *inner;
            entries.retain(|_, e| now <= e.valid_until);
            order.retain(|d| entries.contains_key(d));
            while entries.len() >= self.capacity {
                let Some(oldest) = order.pop_front() else {
                    break;
                };
                entries.remove(&oldest);
            }
        }
        inner.entries.insert(digest, Entry { name, valid_until });
        inner.order.push_back(digest);
    }

    /// Forgets every token (the trusted keys changed).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.order.clear();
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent whatever panicked while holding it: take it back.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_distinct_tokens_never_grows_the_cache_past_its_bound() {
        let cache = TokenCache::new(64);
        for i in 0..10_000 {
            let token = format!("token-{i}");
            cache.insert(TokenCache::digest(&token), format!("id-{i}"), 2_000, 1_000);
            assert!(cache.len() <= 64, "{} entries after {i}", cache.len());
        }
        assert_eq!(cache.len(), 64);
        let inner = cache.lock();
        assert_eq!(inner.order.len(), inner.entries.len());
        drop(inner);
        // The newest survive, the oldest were dropped.
        assert_eq!(
            cache.get(&TokenCache::digest("token-9999"), 1_000),
            Some("id-9999".to_owned())
        );
        assert_eq!(cache.get(&TokenCache::digest("token-0"), 1_000), None);
    }

    #[test]
    fn expired_entries_are_not_returned_and_go_first() {
        let cache = TokenCache::new(2);
        cache.insert(TokenCache::digest("old"), "old".into(), 100, 50);
        cache.insert(TokenCache::digest("live"), "live".into(), 1_000, 50);
        assert_eq!(
            cache.get(&TokenCache::digest("old"), 100),
            Some("old".into())
        );
        assert_eq!(cache.get(&TokenCache::digest("old"), 101), None);
        cache.insert(TokenCache::digest("old2"), "old2".into(), 150, 50);
        // Full: the expired one is dropped before the oldest live one.
        cache.insert(TokenCache::digest("new"), "new".into(), 1_000, 200);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get(&TokenCache::digest("live"), 200),
            Some("live".into())
        );
        assert_eq!(
            cache.get(&TokenCache::digest("new"), 200),
            Some("new".into())
        );
    }

    #[test]
    fn clear_forgets_and_zero_capacity_keeps_nothing() {
        let cache = TokenCache::new(4);
        cache.insert(TokenCache::digest("a"), "a".into(), 10, 0);
        cache.clear();
        assert!(cache.is_empty());
        let off = TokenCache::new(0);
        off.insert(TokenCache::digest("a"), "a".into(), 10, 0);
        assert!(off.is_empty());
    }
}
