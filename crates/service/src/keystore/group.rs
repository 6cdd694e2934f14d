//! Group commit: concurrent writes share one transaction, hence one `fsync`.
//!
//! Every write of the store ([`Write`]) is queued. A writer that finds no batch running becomes
//! the leader: it takes every queued write (its own and those that arrived while the previous
//! batch was syncing), runs them in order inside one `BEGIN IMMEDIATE` transaction, commits
//! once, updates the read cache, and hands each waiting writer its own result. The others wait
//! on a condition variable; the next of them to wake with its write still queued leads the next
//! batch. Nothing waits on purpose: a lone writer commits at once, alone, exactly as before, and
//! batches grow only while a commit is in progress.
//!
//! A write is acknowledged only after the commit of its batch returned, so the durability
//! guarantee of the store is unchanged: `Ok` means on disk. Writes that fail for a reason of
//! their own (`NotFound`, `AlreadyExists`, an undecodable row) change nothing in the database
//! (SQLite backs out the failing statement only) and do not disturb the rest of the batch. Any
//! other failure (disk full, read-only, I/O), or a failed commit, rolls the whole batch back and
//! runs each of its writes again alone in its own transaction, so each caller gets the result it
//! would have had without batching.

use std::collections::HashMap;
use std::mem;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, TransactionBehavior};

use super::{db, KeyIdentity, KeyRecord, KeyState, KeyStoreError};

/// One write of the crash protocol.
pub(super) enum Write {
    /// `reserve`: a new row in state `Creating`; with a quota, only if the owner has fewer
    /// rows than that.
    Insert {
        identity: KeyIdentity,
        record: KeyRecord,
        quota: Option<usize>,
    },
    /// `commit`, `begin_destroy`: the row moves from `from` to `to`; answers its record.
    Transition {
        identity: KeyIdentity,
        from: KeyState,
        to: KeyState,
    },
    /// `abort`, `finish_destroy` (the row must be in `state`), `forget` (`None`: any state).
    Delete {
        identity: KeyIdentity,
        state: Option<KeyState>,
    },
}

/// What a successful write answers.
pub(super) enum Done {
    Unit,
    Record(KeyRecord),
}

type Outcome = Result<Done, KeyStoreError>;

/// The queue of writes waiting for a batch, and the results of finished batches.
#[derive(Default)]
struct Queue {
    next_ticket: u64,
    pending: Vec<(u64, Write)>,
    finished: HashMap<u64, Outcome>,
    leading: bool,
}

/// The group-commit queue of one store.
#[derive(Default)]
pub(super) struct Committer {
    queue: Mutex<Queue>,
    done: Condvar,
}

/// The read cache as the committer updates it.
pub(super) type Cache = std::sync::RwLock<HashMap<KeyIdentity, KeyRecord>>;

impl Committer {
    /// Runs `write` in the next batch and returns its result once the batch is committed.
    ///
    /// `connection` locks the store's connection (held for a whole batch), `cache` is the read
    /// cache, updated after the commit, under the connection lock, in commit order.
    pub(super) fn submit(
        &self,
        write: Write,
        connection: &Mutex<Connection>,
        cache: &Cache,
    ) -> Outcome {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.pending.push((ticket, write));
        loop {
            if let Some(outcome) = queue.finished.remove(&ticket) {
                return outcome;
            }
            if queue.leading {
                queue = self
                    .done
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Our write is still pending and no batch runs: lead one. The batch includes our
            // write, since only a leader takes writes from the queue.
            queue.leading = true;
            let batch = mem::take(&mut queue.pending);
            drop(queue);
            let outcomes = {
                let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                run_batch(&mut connection, cache, batch)
            };
            queue = self.lock();
            queue.finished.extend(outcomes);
            queue.leading = false;
            self.done.notify_all();
        }
    }

    /// See `KeyStore::connection` on poisoning: the queue is changed by whole operations only.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `error` is a write's own failure, which leaves the transaction usable.
fn own_failure(error: &KeyStoreError) -> bool {
    matches!(
        error,
        KeyStoreError::NotFound
            | KeyStoreError::AlreadyExists
            | KeyStoreError::QuotaExceeded
            | KeyStoreError::Attributes(_)
            | KeyStoreError::Corrupt(_)
    )
}

impl Write {
    /// Whether the write may be lost on power loss without breaking the crash protocol.
    ///
    /// Dropping a `Creating` or `Destroying` row (`abort`, `finish_destroy`) is such a write: if
    /// it is lost, the row is back in that state after the restart, and start-up recovery
    /// removes it (and whatever back-end key it names) just the same. The client already knows
    /// the key does not exist, and the row is invisible to reads. `kill -9` loses nothing
    /// either way: the commit is in the WAL, in the kernel's page cache.
    fn needs_sync(&self) -> bool {
        !matches!(
            self,
            Write::Delete {
                state: Some(KeyState::Creating | KeyState::Destroying),
                ..
            }
        )
    }
}

/// Runs a batch in one transaction, or each write alone if that fails; then updates the cache.
///
/// A batch made only of writes that need no sync (see [`Write::needs_sync`]) is committed with
/// `synchronous=NORMAL`, which in WAL mode skips the `fsync`; the next synced commit makes it
/// durable too, since the WAL is written in order.
pub(super) fn run_batch(
    connection: &mut Connection,
    cache: &Cache,
    batch: Vec<(u64, Write)>,
) -> Vec<(u64, Outcome)> {
    let lazy = batch.iter().all(|(_, write)| !write.needs_sync())
        && connection
            .execute_batch("PRAGMA synchronous = NORMAL")
            .is_ok();
    let outcomes = run_writes(connection, &batch);
    crate::metrics::keystore_batch(!lazy);
    if lazy {
        if let Err(error) = connection.execute_batch("PRAGMA synchronous = FULL") {
            // Never expected (a pragma on an open connection); later commits would not be
            // synced, so say so loudly.
            tracing::error!(%error, "the key store could not restore synchronous=FULL");
        }
    }
    {
        let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
        for ((_, write), outcome) in batch.iter().zip(&outcomes) {
            if let Ok(done) = outcome {
                apply(&mut cache, write, done);
            }
        }
    }
    batch
        .into_iter()
        .map(|(ticket, _)| ticket)
        .zip(outcomes)
        .collect()
}

/// The writes of a batch together, or each alone if that fails.
fn run_writes(connection: &mut Connection, batch: &[(u64, Write)]) -> Vec<Outcome> {
    let outcomes = if batch.len() == 1 {
        None
    } else {
        together(connection, batch)
    };
    outcomes.unwrap_or_else(|| {
        batch
            .iter()
            .map(|(_, write)| alone(connection, write))
            .collect()
    })
}

/// The whole batch in one transaction; `None` if anything but a write's own failure happened
/// (nothing is then committed).
fn together(connection: &mut Connection, batch: &[(u64, Write)]) -> Option<Vec<Outcome>> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ok()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (_, write) in batch {
        let outcome = execute(&transaction, write);
        if let Err(error) = &outcome {
            if !own_failure(error) {
                // Dropping the transaction rolls the batch back.
                return None;
            }
        }
        outcomes.push(outcome);
    }
    transaction.commit().ok()?;
    Some(outcomes)
}

/// One write in its own transaction.
fn alone(connection: &mut Connection, write: &Write) -> Outcome {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcome = execute(&transaction, write)?;
    transaction.commit()?;
    Ok(outcome)
}

/// The statements of one write, inside the caller's transaction.
fn execute(connection: &Connection, write: &Write) -> Outcome {
    match write {
        Write::Insert {
            identity,
            record,
            quota,
        } => {
            if let Some(quota) = quota {
                db::check_quota(connection, identity, *quota)?;
            }
            db::insert_creating(connection, identity, record).map(|()| Done::Unit)
        }
        Write::Transition { identity, from, to } => {
            db::transition(connection, identity, *from, *to).map(Done::Record)
        }
        Write::Delete { identity, state } => {
            db::delete(connection, identity, *state).map(|()| Done::Unit)
        }
    }
}

/// The change a committed write makes to the cache of committed rows.
fn apply(cache: &mut HashMap<KeyIdentity, KeyRecord>, write: &Write, done: &Done) {
    match (write, done) {
        (
            Write::Transition {
                identity,
                to: KeyState::Committed,
                ..
            },
            Done::Record(record),
        ) => {
            cache.insert(identity.clone(), record.clone());
        }
        (
            Write::Transition {
                identity,
                from: KeyState::Committed,
                ..
            },
            _,
        )
        | (
            Write::Delete {
                identity,
                state: None | Some(KeyState::Committed),
            },
            _,
        ) => {
            cache.remove(identity);
        }
        _ => {}
    }
}
