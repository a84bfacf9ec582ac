//! [`CpuClock`]: the CPU time this process spends between two points, from the kernel's
//! per-thread scheduler statistics.
//!
//! Throughput on a 2-core machine is bound by CPU: the embedded API server, the client and the
//! controller share the cores. CPU time per key says what one side costs regardless of how the
//! work was spread over time, and is steadier than a rate on a shared machine.
//!
//! Read from `/proc/self/task/*/schedstat` (nanoseconds on a CPU, per thread) rather than
//! `/proc/self/stat` (10 ms ticks). A thread that exits between two readings loses its time in
//! between; threads that started count from zero.

use std::collections::HashMap;
use std::time::Duration;

/// A snapshot of every thread's CPU time; [`CpuClock::elapsed`] is the CPU spent since.
#[derive(Debug, Clone)]
pub struct CpuClock {
    threads: HashMap<u32, u64>,
}

impl CpuClock {
    /// The CPU time of every thread of this process, now.
    ///
    /// # Errors
    /// When `/proc/self/task` cannot be read (not Linux, or no procfs).
    pub fn now() -> std::io::Result<Self> {
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir("/proc/self/task")? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // A thread may exit between the listing and the read: skip it.
            let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
                continue;
            };
            if let Some(ns) = on_cpu_nanos(&text) {
                threads.insert(tid, ns);
            }
        }
        Ok(Self { threads })
    }

    /// CPU time spent by this process's threads since this snapshot.
    ///
    /// # Errors
    /// As [`CpuClock::now`].
    pub fn elapsed(&self) -> std::io::Result<Duration> {
        Ok(Self::now()?.since(self))
    }

    /// CPU time between `earlier` and this snapshot, thread by thread.
    fn since(&self, earlier: &Self) -> Duration {
        let nanos = self
            .threads
            .iter()
            .map(|(tid, &now)| now.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(nanos)
    }
}

/// The first field of a `schedstat` line: nanoseconds spent on a CPU.
fn on_cpu_nanos(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_is_read_as_nanoseconds_on_cpu() {
        assert_eq!(on_cpu_nanos("123456789 1000 42\n"), Some(123_456_789));
        assert_eq!(on_cpu_nanos(""), None);
        assert_eq!(on_cpu_nanos("x 1 2"), None);
    }

    #[test]
    fn new_threads_count_from_zero_and_exited_ones_drop_out() {
        let before = CpuClock {
            threads: HashMap::from([(1, 100), (2, 500)]),
        };
        let after = CpuClock {
            threads: HashMap::from([(1, 160), (3, 40)]),
        };
        assert_eq!(after.since(&before), Duration::from_nanos(60 + 40));
    }

    #[test]
    fn busy_work_on_this_thread_shows_up() {
        let clock = CpuClock::now().expect("procfs");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = clock.elapsed().expect("procfs");
        assert!(spent > Duration::ZERO, "{spent:?}");
    }
}
