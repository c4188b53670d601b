//! How much of the machine other work took during a run: the CPU time the whole
//! machine spent busy (`/proc/stat`) minus what the two services, wrk and xtask spent
//! (`/proc/PID/stat`; wrk is a waited-for child of xtask, so it is in xtask's
//! children's time once the run is over). On a shared machine this says whether a
//! run's absolute figures are to be trusted.

use std::fs;

/// CPU time in clock ticks at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Every CPU's busy and idle time.
    pub(crate) total: u64,
    /// Every CPU's busy time.
    pub(crate) busy: u64,
    /// Busy time of the benchmark's own processes.
    pub(crate) ours: u64,
}

/// Reads the machine's and the benchmark's CPU time (`pids`: the services).
pub(crate) fn sample(pids: &[u32]) -> Option<Sample> {
    let (total, busy) = machine(&fs::read_to_string("/proc/stat").ok()?)?;
    let mut ours = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| process(&text, true))
        .unwrap_or(0);
    for pid in pids {
        ours += fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|text| process(&text, false))
            .unwrap_or(0);
    }
    Some(Sample { total, busy, ours })
}

/// The share of the machine's CPU time that other processes used between two samples.
pub(crate) fn others_share(before: &Sample, after: &Sample) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    if total == 0 {
        return None;
    }
    let busy = after.busy.saturating_sub(before.busy);
    let ours = after.ours.saturating_sub(before.ours);
    #[allow(
        clippy::cast_precision_loss,
        reason = "clock ticks of one run, far below 2^52"
    )]
    let share = busy.saturating_sub(ours) as f64 / total as f64;
    Some(share)
}

/// (total, busy) from the `cpu` line of `/proc/stat`.
fn machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    let total = busy + get(3) + get(4);
    Some((total, busy))
}

/// A process's user and system time, with its waited-for children's if asked.
fn process(stat: &str, with_children: bool) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: count from the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3) ... utime 14, stime 15, cutime 16, cstime 17.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let own = field(14)? + field(15)?;
    Some(if with_children {
        own + field(16)? + field(17)?
    } else {
        own
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_machine_line() {
        let stat = "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 50 2 25 400 10 1 1 5 0 0\nintr 1\n";
        assert_eq!(machine(stat), Some((990, 170)));
        assert_eq!(machine("intr 1\n"), None);
    }

    #[test]
    fn reads_a_process_with_spaces_in_its_name() {
        let stat = "4242 (wrk (a b)) S 1 2 3 0 -1 4194560 10 0 0 0 70 30 5 6 20 0 3 0 100 0 0";
        assert_eq!(process(stat, false), Some(100));
        assert_eq!(process(stat, true), Some(111));
        assert_eq!(process("garbage", false), None);
    }

    #[test]
    fn share_of_others() {
        let before = Sample {
            total: 1_000,
            busy: 400,
            ours: 300,
        };
        let after = Sample {
            total: 3_000,
            busy: 2_200,
            ours: 1_800,
        };
        // 1 800 busy, 1 500 ours: 300 of 2 000.
        assert_eq!(others_share(&before, &after), Some(0.15));
        assert_eq!(others_share(&before, &before), None);
    }
}
