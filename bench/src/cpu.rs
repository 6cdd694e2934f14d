//! CPU time of this process (getrusage) and of another one (`/proc/<pid>/stat`).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;
use nix::unistd::{sysconf, SysconfVar};

fn from_timeval(tv: TimeVal) -> Duration {
    let micros = tv.tv_sec() as i128 * 1_000_000 + tv.tv_usec() as i128;
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// User plus system CPU time consumed so far by this process, all threads included.
///
/// # Errors
/// When getrusage fails (it does not on Linux with valid arguments).
pub(crate) fn own() -> Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    Ok(from_timeval(usage.user_time()) + from_timeval(usage.system_time()))
}

/// utime + stime, in clock ticks, from the text of a `/proc/<pid>/stat` file.
///
/// The command name (field 2) is in parentheses and may hold spaces and parentheses: the
/// fields are counted from the last `)`.
fn ticks_from_stat(stat: &str) -> Result<u64> {
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .context("no command name in the stat line")?;
    // After the name come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("stat line has no field {n}"))?
            .parse::<u64>()
            .with_context(|| format!("stat field {n} is not a number"))
    };
    Ok(field(14)? + field(15)?)
}

/// Whether a stat line shows an exited process not reaped yet (zombie or dead).
fn is_dead(stat: &str) -> bool {
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

/// User plus system CPU time consumed so far by process `pid` (all its threads), at the
/// resolution of the clock tick.
///
/// # Errors
/// When the process does not exist, has exited (a zombie) or its stat file cannot be read.
pub(crate) fn of_process(pid: i32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    if is_dead(&stat) {
        bail!("process {pid} has exited");
    }
    let ticks = ticks_from_stat(&stat).with_context(|| format!("parsing {path}"))?;
    let per_second = match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as u64,
        Ok(_) => bail!("sysconf(_SC_CLK_TCK) has no value"),
        Err(e) => bail!("sysconf(_SC_CLK_TCK): {e}"),
    };
    Ok(Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    17 5 0 0 20 0 3 0 12345 1000000 200 18446744073709551615";
        assert_eq!(ticks_from_stat(stat).unwrap(), 22);
        assert!(ticks_from_stat("4242 (x) S 1").is_err());
        assert!(!is_dead(stat));
        assert!(is_dead("4242 (a) b) Z 1 4242"));
    }

    #[test]
    fn this_process_uses_some_cpu() {
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(own().unwrap() > Duration::ZERO);
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(of_process(me).is_ok());
        assert!(of_process(i32::MAX).is_err());
    }
}
