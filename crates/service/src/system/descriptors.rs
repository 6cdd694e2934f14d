//! File descriptors: the open-file limit is raised at start-up and the connections are capped
//! below it.
//!
//! Every served connection holds a descriptor, and so do the key store, the log, the audit log,
//! the providers (Mbed TLS key files, PKCS#11 and TPM devices) and the metrics endpoint. With
//! `max_connections` above the open-file limit, connections alone could take every descriptor:
//! `accept` then fails, and so does whatever the daemon needs to answer the connections it has.
//!
//! [`fit_connections`] runs once, after the service is built and the metrics endpoint started,
//! so that what they hold is counted rather than guessed:
//!
//! 1. it counts the descriptors open now;
//! 2. it keeps a reserve: as many again (a reload builds a second key store and set of
//!    providers while the first still serves), one per thread of the blocking pool (a provider
//!    operation may open a file: an Mbed TLS key file, an SQLite journal), and
//!    [`SPARE_DESCRIPTORS`] for the metrics endpoint's connections and the logs;
//! 3. it raises the soft `RLIMIT_NOFILE` towards the hard one, as far as `max_connections` plus
//!    all of the above needs;
//! 4. it serves at most what is left under the soft limit; when that is below
//!    `max_connections`, the per-client share is worked out again from that cap, as if it were
//!    `max_connections`.
//!
//! The accept loop takes a connection slot before accepting, so connections never hold more
//! descriptors than the cap, including a connection over its client's share, which holds its
//! slot from its accept to its close a moment later. The figures are logged at start-up.

use std::io;

use nix::sys::resource::{getrlimit, rlim_t, setrlimit, Resource, RLIM_INFINITY};

use crate::config::CoreSettings;
use crate::front::ServeLimits;

/// Descriptors kept, beyond those counted at start-up and their copy for a reload, for the
/// metrics endpoint's connections, log and audit files reopened, and the daemon's own short
/// uses.
pub const SPARE_DESCRIPTORS: usize = 16;

/// The kernel's ceiling on a process's descriptors when the hard limit is unlimited and
/// `/proc/sys/fs/nr_open` cannot be read (the kernel's default).
const DEFAULT_NR_OPEN: u64 = 1 << 20;

/// What start-up found and chose; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorPlan {
    /// The soft limit found at start-up.
    pub soft_before: u64,
    /// The hard limit.
    pub hard: u64,
    /// The soft limit to run with.
    pub soft_after: u64,
    /// Descriptors open at start-up (key store, logs, providers, sockets, runtime).
    pub open: usize,
    /// Descriptors kept for everything but connections, beyond `open`.
    pub reserve: usize,
    /// `core_settings.max_connections`.
    pub configured: usize,
    /// Connections served at once.
    pub cap: usize,
}

impl DescriptorPlan {
    /// The plan for `configured` connections, with `open` descriptors open, `pool_threads`
    /// threads in the blocking pool, and the limits `soft` and `hard` (`ceiling`: the most a
    /// soft limit may be, when `hard` is unlimited).
    pub fn new(
        configured: usize,
        open: usize,
        pool_threads: usize,
        soft: u64,
        hard: u64,
        ceiling: u64,
    ) -> Self {
        let reserve = open
            .saturating_add(pool_threads)
            .saturating_add(SPARE_DESCRIPTORS);
        let wanted = to_u64(configured)
            .saturating_add(to_u64(open))
            .saturating_add(to_u64(reserve));
        let hard_or_ceiling = if hard == RLIM_INFINITY { ceiling } else { hard };
        let soft_after = if soft == RLIM_INFINITY {
            soft
        } else {
            wanted.min(hard_or_ceiling).max(soft)
        };
        let usable = if soft_after == RLIM_INFINITY {
            ceiling
        } else {
            soft_after
        };
        let left = usable.saturating_sub(to_u64(open).saturating_add(to_u64(reserve)));
        let cap = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(configured)
            .max(1);
        DescriptorPlan {
            soft_before: soft,
            hard,
            soft_after,
            open,
            reserve,
            configured,
            cap,
        }
    }

    /// Whether the cap is below `max_connections`.
    pub fn lowered(&self) -> bool {
        self.cap < self.configured
    }

    /// Whether even one connection does not fit beside the reserve.
    pub fn starved(&self) -> bool {
        let usable = if self.soft_after == RLIM_INFINITY {
            u64::MAX
        } else {
            self.soft_after
        };
        usable < to_u64(self.open) + to_u64(self.reserve) + 1
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn show(limit: u64) -> String {
    if limit == RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}

/// Descriptors open in this process now, from `/proc/self/fd`.
fn count_open() -> io::Result<usize> {
    // The directory handle being read is itself one of the entries.
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(DEFAULT_NR_OPEN)
}

/// Raises the open-file limit and caps `limits` to it, as the [module documentation](self)
/// says, and logs the figures. Call it once at start-up, after the service is built and the
/// metrics endpoint started, before serving.
pub fn fit_connections(core: &CoreSettings, mut limits: ServeLimits) -> ServeLimits {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit; connections not capped");
            return limits;
        }
    };
    let open = count_open().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot count open descriptors; assuming 64");
        64
    });
    let mut plan = DescriptorPlan::new(
        limits.max_connections,
        open,
        core.thread_pool_size.max(1),
        soft,
        hard,
        nr_open(),
    );
    if plan.soft_after != soft {
        if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, plan.soft_after as rlim_t, hard) {
            tracing::warn!(%error, "cannot raise the open-file limit");
            plan = DescriptorPlan::new(
                limits.max_connections,
                open,
                core.thread_pool_size.max(1),
                soft,
                soft,
                soft,
            );
        }
    }
    let soft_change = if plan.soft_after == plan.soft_before {
        format!("{}, unchanged", show(plan.soft_before))
    } else {
        format!(
            "{} raised to {}",
            show(plan.soft_before),
            show(plan.soft_after)
        )
    };
    let summary = format!(
        "open files: soft limit {soft_change} (hard limit {}); {} open at start-up, {} kept \
         for reloads, the key store, logs, providers and metrics",
        show(plan.hard),
        plan.open,
        plan.reserve,
    );
    if plan.starved() {
        tracing::error!(
            "{summary}: no descriptor is left for connections; serving 1 connection at a time \
             (raise the hard limit, e.g. LimitNOFILE= in the service unit)"
        );
    } else if plan.lowered() {
        tracing::warn!(
            "{summary}: serving at most {} connections, not core_settings.max_connections = {} \
             (raise the hard limit, e.g. LimitNOFILE= in the service unit, to serve more)",
            plan.cap,
            plan.configured,
        );
    } else {
        tracing::info!(
            "{summary}: serving at most {} connections (core_settings.max_connections)",
            plan.cap
        );
    }
    if plan.lowered() {
        let capped = CoreSettings {
            max_connections: plan.cap,
            ..core.clone()
        };
        limits.max_connections = plan.cap;
        limits.max_connections_per_client = capped.connections_per_client();
        tracing::info!(
            "connections per client: at most {} (of the {} served)",
            limits.max_connections_per_client,
            plan.cap
        );
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_hard_limit_caps_connections_below_it_with_the_reserve_kept() {
        // 1024 connections wanted, 20 descriptors open, 2 pool threads, limit 64:64.
        let plan = DescriptorPlan::new(1024, 20, 2, 64, 64, 1 << 20);
        assert_eq!(plan.soft_after, 64);
        assert_eq!(plan.reserve, 20 + 2 + SPARE_DESCRIPTORS);
        assert_eq!(plan.cap, 64 - 20 - plan.reserve);
        assert!(plan.lowered());
        assert!(!plan.starved());
    }

    #[test]
    fn the_soft_limit_is_raised_only_as_far_as_needed_and_the_hard_one_allows() {
        let plan = DescriptorPlan::new(1024, 20, 4, 1024, 524_288, 1 << 20);
        let needed = 1024 + 20 + (20 + 4 + SPARE_DESCRIPTORS as u64);
        assert_eq!(plan.soft_after, needed);
        assert_eq!(plan.cap, 1024);
        assert!(!plan.lowered());

        let plan = DescriptorPlan::new(1024, 20, 4, 1024, 4096, 1 << 20);
        assert_eq!(plan.soft_after, needed);

        let plan = DescriptorPlan::new(1024, 20, 4, 1024, 1024, 1 << 20);
        assert_eq!(plan.soft_after, 1024);
        assert_eq!(plan.cap, 1024 - 20 - plan.reserve);
    }

    #[test]
    fn an_unlimited_hard_limit_stops_at_the_kernel_ceiling() {
        let plan = DescriptorPlan::new(usize::MAX, 10, 1, 1024, RLIM_INFINITY, 4096);
        assert_eq!(plan.soft_after, 4096);
        assert_eq!(plan.cap, 4096 - 10 - plan.reserve);
    }

    #[test]
    fn a_soft_limit_above_the_need_is_left_alone() {
        let plan = DescriptorPlan::new(100, 10, 1, 20_000, 20_000, 1 << 20);
        assert_eq!((plan.soft_after, plan.cap), (20_000, 100));
    }

    #[test]
    fn no_room_leaves_one_connection_and_says_so() {
        let plan = DescriptorPlan::new(1024, 30, 2, 64, 64, 1 << 20);
        assert!(plan.starved());
        assert_eq!(plan.cap, 1);
    }
}
