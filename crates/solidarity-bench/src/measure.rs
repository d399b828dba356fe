//! Clocks, memory and statistics.

use std::time::Duration;

/// CPU time this process has used (all threads, user + system), from `/proc/self/stat`
/// (10 ms resolution: measure windows of seconds).
pub fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces) start at `state`.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    // Linux reports in USER_HZ, 100 per second on every mainstream architecture.
    Duration::from_millis(ticks * 10)
}

/// Resident set size of a process, bytes (`None`: this process).
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |pid| format!("/proc/{pid}/status"),
    );
    std::fs::read_to_string(path)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// The `q`-quantile (0..=1) of `values` by nearest rank; 0 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values`; 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Milliseconds of a duration.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Sums every sample of a counter in a Prometheus text exposition.
pub fn counter_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// CPU time of each live thread of this process, by thread id, with its name
/// (`/proc/self/task/*/stat`, 10 ms resolution like [`process_cpu`]).
#[derive(Clone, Debug, Default)]
pub struct ThreadCpu {
    threads: std::collections::HashMap<u32, (String, Duration)>,
}

impl ThreadCpu {
    /// The CPU time every thread alive now has used.
    pub fn now() -> Self {
        let mut threads = std::collections::HashMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self { threads };
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|tid| tid.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let Some(entry) = parse_thread_stat(&stat) {
                threads.insert(tid, entry);
            }
        }
        Self { threads }
    }

    /// CPU used since `before`, by thread role: the thread name without a trailing
    /// `-<number>` (`sled-io-3` → `sled-io`), so the many threads of one pool add up.
    /// Threads that ended meanwhile are missing: the caller books the process total minus
    /// the sum as theirs.
    pub fn since(&self, before: &Self) -> std::collections::BTreeMap<String, Duration> {
        let mut roles = std::collections::BTreeMap::new();
        for (tid, (name, used)) in &self.threads {
            let earlier = before
                .threads
                .get(tid)
                .map_or(Duration::ZERO, |(_, used)| *used);
            *roles.entry(thread_role(name)).or_insert(Duration::ZERO) +=
                used.saturating_sub(earlier);
        }
        roles
    }
}

/// Name and user + system time of one `/proc/<pid>/task/<tid>/stat` line.
fn parse_thread_stat(stat: &str) -> Option<(String, Duration)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((name, Duration::from_millis((user + system) * 10)))
}

/// A thread's role: its name without a trailing `-<number>`.
fn thread_role(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((role, number))
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            role.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// CPU per delivery, µs, of each thread role in `roles`, plus `exited threads` for what
/// the process used beyond their sum (threads that ended within the window).
pub fn per_delivery_by_role(
    roles: &std::collections::BTreeMap<String, Duration>,
    process: Duration,
    deliveries: usize,
) -> std::collections::BTreeMap<String, f64> {
    let per = |used: Duration| used.as_secs_f64() * 1e6 / deliveries.max(1) as f64;
    let mut out: std::collections::BTreeMap<String, f64> = roles
        .iter()
        .filter(|(_, used)| !used.is_zero())
        .map(|(role, used)| (role.clone(), per(*used)))
        .collect();
    let counted: Duration = roles.values().sum();
    let rest = process.saturating_sub(counted);
    if !rest.is_zero() {
        out.insert("exited threads".to_owned(), per(rest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_stat_gives_name_and_time_even_with_spaces_and_parentheses_in_the_name() {
        let stat = "4242 (store (w) 1) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(
            parse_thread_stat(stat),
            Some(("store (w) 1".to_owned(), Duration::from_millis(3000)))
        );
    }

    #[test]
    fn pool_threads_share_one_role() {
        assert_eq!(thread_role("sled-io-12"), "sled-io");
        assert_eq!(thread_role("store-writer"), "store-writer");
        assert_eq!(thread_role("tokio-rt-worker"), "tokio-rt-worker");
        assert_eq!(thread_role("odd-"), "odd-");
    }

    #[test]
    fn what_no_live_thread_accounts_for_is_booked_to_exited_threads() {
        let roles = std::collections::BTreeMap::from([
            ("sled-io".to_owned(), Duration::from_millis(200)),
            ("idle".to_owned(), Duration::ZERO),
        ]);
        let out = per_delivery_by_role(&roles, Duration::from_millis(500), 100);
        assert_eq!(out.get("sled-io"), Some(&2000.0));
        assert_eq!(out.get("exited threads"), Some(&3000.0));
        assert!(!out.contains_key("idle"));
    }
}
