//! A bounded cache of unwrapped, parsed keys.
//!
//! Unwrapping a key and parsing it costs more than many operations with it (an EC private key
//! needs its public point computed, an RSA key its Montgomery contexts), so each key is parsed
//! once and kept while it is used.
//!
//! Entries are found by the key's associated data (identity and attributes, see
//! [`kek::associated_data`](super::kek::associated_data)) and are used only if the blob stored
//! with them is the one the key store holds now: a key destroyed and created again under the
//! same name, or a row whose blob was replaced, is unwrapped again (and a replaced blob then
//! fails to unwrap). So a cache hit never skips a check that a miss would make.
//!
//! The cache is split into shards, each behind its own lock held only for a map operation,
//! never during cryptography. When a shard is full, its least recently used entry is evicted.
//! Keys are evicted when destroyed.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::material::LoadedKey;

/// Number of shards (a power of two).
const SHARDS: usize = 16;

/// How many keys the cache holds at most.
pub(super) const CAPACITY: usize = 1024;

struct Entry {
    blob: Vec<u8>,
    key: Arc<LoadedKey>,
    /// When the entry was last used, on the cache's clock.
    used: AtomicU64,
}

/// Parsed keys, by associated data.
pub(super) struct KeyCache {
    shards: Vec<RwLock<HashMap<Vec<u8>, Entry>>>,
    per_shard: usize,
    hasher: RandomState,
    clock: AtomicU64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    /// An empty cache holding at most `capacity` keys (at least one per shard).
    pub(super) fn new(capacity: usize) -> Self {
        KeyCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            clock: AtomicU64::new(0),
        }
    }

    fn shard(&self, ad: &[u8]) -> &RwLock<HashMap<Vec<u8>, Entry>> {
        let index = (self.hasher.hash_one(ad) as usize) % SHARDS;
        &self.shards[index]
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// The parsed key of `ad`, if cached with this very `blob`.
    pub(super) fn get(&self, ad: &[u8], blob: &[u8]) -> Option<Arc<LoadedKey>> {
        // A panic never leaves a map half-updated (single map operations), so poison is ignored.
        let shard = self
            .shard(ad)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(ad).filter(|entry| entry.blob == blob)?;
        entry.used.store(self.tick(), Ordering::Relaxed);
        Some(Arc::clone(&entry.key))
    }

    /// Caches `key`, parsed from `blob`, under `ad`; evicts the least recently used key of the
    /// shard if it is full.
    pub(super) fn insert(&self, ad: Vec<u8>, blob: Vec<u8>, key: Arc<LoadedKey>) {
        let used = AtomicU64::new(self.tick());
        let mut shard = self
            .shard(&ad)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard && !shard.contains_key(&ad) {
            let oldest = shard
                .iter()
                .min_by_key(|(_, entry)| entry.used.load(Ordering::Relaxed))
                .map(|(ad, _)| ad.clone());
            if let Some(oldest) = oldest {
                shard.remove(&oldest);
            }
        }
        shard.insert(ad, Entry { blob, key, used });
    }

    /// Forgets the key of `ad`.
    pub(super) fn remove(&self, ad: &[u8]) {
        self.shard(ad)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(ad);
    }

    /// How many keys are cached.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}
