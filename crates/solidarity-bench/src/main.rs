//! `solidarity-bench`: measures what matters for solidarity against stock gossipsub, in one
//! process and one run, and prints a table (medians of `--runs`) and writes JSON.
//!
//! ```text
//! cargo run --release -p solidarity-bench -- all            # the full set (BENCHMARKS.md)
//! cargo run --release -p solidarity-bench -- all --quick    # a small smoke run
//! ```

#![allow(
    unreachable_pub,
    reason = "a binary crate: `pub` marks the interface of each module"
)]

mod baseline;
mod measure;
mod migrate;
#[allow(
    dead_code,
    reason = "expiry and fork evidence are for tests/tests/migration_crash.rs, which includes it"
)]
mod old_layout;
mod ours;
mod propagation;
mod single;
mod topology;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Propagation,
    Ingest,
    Ack,
    Catchup,
    Startup,
    Idle,
    Migrate,
}

#[derive(Parser)]
#[command(about = "Benchmark solidarity against stock gossipsub on this machine")]
struct Args {
    /// Scenarios to run.
    #[arg(value_enum, default_values_t = [Scenario::All])]
    scenarios: Vec<Scenario>,
    /// Runs per figure; the table shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Node counts for propagation.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 50, 200])]
    nodes: Vec<usize>,
    /// Alerts per propagation run.
    #[arg(long, default_value_t = 100)]
    alerts: usize,
    /// Alerts per second in propagation.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Catch-up: how many of the newest alerts the syncing node misses (one case each).
    #[arg(long, value_delimiter = ',', default_values_t = [0, 1, 100, 10_000])]
    missing: Vec<usize>,
    /// Catch-up, start-up and migrate: alerts the full node holds.
    #[arg(long, default_value_t = 100_000)]
    stored: usize,
    /// Propagation: skip the baseline (for profiling our stack alone; its columns then
    /// repeat ours).
    #[arg(long)]
    no_baseline: bool,
    /// Ingest, catch-up and start-up: the alerts expire (1 to 720 hours on), so the store
    /// seals their records with hourly keys; without it they never expire and stay plain.
    #[arg(long)]
    expiring: bool,
    /// Small sizes everywhere: a smoke run that finishes in about a minute.
    #[arg(long)]
    quick: bool,
    /// Log the nodes' events to stderr (a tracing filter, e.g. `info` or `solidarity=debug`).
    #[arg(long)]
    log: Option<String>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
}

#[derive(Default, Serialize)]
struct Results {
    machine: String,
    propagation: Vec<PropagationRow>,
    idle_cpu_share_per_node: Vec<f64>,
    ingest: Vec<single::IngestFigures>,
    ack: Vec<single::AckFigures>,
    catch_up: Vec<single::CatchUpFigures>,
    startup: Vec<single::StartupFigures>,
    migrate: Vec<migrate::MigrateFigures>,
}

#[derive(Serialize)]
struct PropagationRow {
    ours: propagation::Figures,
    baseline: propagation::Figures,
}

fn main() -> anyhow::Result<()> {
    let mut args_os = std::env::args_os();
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("__solidarity")) {
        // A daemon child of the start-up scenario: exactly the `solidarity` binary.
        let _ = args_os.next();
        let _ = args_os.next();
        let code = solidarity::main_from(
            std::iter::once(std::ffi::OsString::from("solidarity")).chain(args_os),
        );
        std::process::exit(if code == std::process::ExitCode::SUCCESS {
            0
        } else {
            1
        });
    }
    let mut args = Args::parse();
    if args.quick {
        args.runs = 1;
        args.nodes = vec![5];
        args.alerts = 10;
    }
    if let Some(filter) = &args.log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter)?)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(run(&args))?;
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_vec_pretty(&results)?)?;
    println!("\nresults written to {}", args.json.display());
    Ok(())
}

fn wants(args: &Args, scenario: Scenario) -> bool {
    args.scenarios.contains(&Scenario::All) || args.scenarios.contains(&scenario)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}")
}

fn medians<T>(rows: &[T], fields: &[fn(&T) -> f64]) -> Vec<f64> {
    fields
        .iter()
        .map(|field| measure::median(&rows.iter().map(field).collect::<Vec<_>>()))
        .collect()
}

async fn run(args: &Args) -> anyhow::Result<Results> {
    let mut results = Results {
        machine: machine(),
        ..Results::default()
    };
    println!(
        "machine: {}; medians of {} runs",
        results.machine, args.runs
    );
    let idle_node_rss_mib = if wants(args, Scenario::Startup) {
        single::idle_node_rss(if args.quick { 3 } else { 20 }).await?
    } else {
        0.0
    };
    if wants(args, Scenario::Propagation) {
        println!(
            "\n== propagation: publish → delivered to all ({} alerts at {}/s)",
            args.alerts, args.rate
        );
        println!(
            "{:>5} {:>9} | {:>9} {:>9} {:>8} {:>7} {:>8} | {:>9} {:>9} {:>8} {:>7} {:>8}",
            "nodes",
            "",
            "ours p50",
            "p99 ms",
            "deliv",
            "copies",
            "cpu µs",
            "base p50",
            "p99 ms",
            "deliv",
            "copies",
            "cpu µs"
        );
        for &n in &args.nodes {
            let mut rows = Vec::new();
            for run in 0..args.runs {
                let seed = 1000 + run as u64;
                // Alternate which stack goes first so warm caches favour neither.
                let (ours, baseline) = if args.no_baseline {
                    let ours = propagation::ours(n, args.alerts, args.rate, seed).await?;
                    (ours.clone(), ours)
                } else if run % 2 == 0 {
                    let ours = propagation::ours(n, args.alerts, args.rate, seed).await?;
                    (
                        ours,
                        propagation::baseline(n, args.alerts, args.rate, seed).await?,
                    )
                } else {
                    let baseline = propagation::baseline(n, args.alerts, args.rate, seed).await?;
                    (
                        propagation::ours(n, args.alerts, args.rate, seed).await?,
                        baseline,
                    )
                };
                rows.push(PropagationRow { ours, baseline });
            }
            let fields: [fn(&PropagationRow) -> f64; 10] = [
                |r| r.ours.p50_ms,
                |r| r.ours.p99_ms,
                |r| r.ours.delivery_ratio,
                |r| r.ours.copies_per_delivery,
                |r| r.ours.cpu_us_per_delivery,
                |r| r.baseline.p50_ms,
                |r| r.baseline.p99_ms,
                |r| r.baseline.delivery_ratio,
                |r| r.baseline.copies_per_delivery,
                |r| r.baseline.cpu_us_per_delivery,
            ];
            let m = medians(&rows, &fields);
            println!(
                "{n:>5} {:>9} | {:>9.1} {:>9.1} {:>7.1}% {:>7.2} {:>8.0} | {:>9.1} {:>9.1} {:>7.1}% {:>7.2} {:>8.0}",
                "",
                m[0],
                m[1],
                m[2] * 100.0,
                m[3],
                m[4],
                m[5],
                m[6],
                m[7] * 100.0,
                m[8],
                m[9]
            );
            for (run, row) in rows.iter().enumerate() {
                println!(
                    "{:>15} | ours {}",
                    format!("run {run} cpu µs"),
                    by_thread(&row.ours.cpu_us_per_delivery_by_thread)
                );
                if !args.no_baseline {
                    println!(
                        "{:>15} | base {}",
                        "",
                        by_thread(&row.baseline.cpu_us_per_delivery_by_thread)
                    );
                }
            }
            results.propagation.extend(rows);
        }
    }
    if wants(args, Scenario::Idle) {
        let (n, seconds) = if args.quick { (5, 3) } else { (10, 20) };
        println!("\n== idle: {n} connected nodes, nothing published, {seconds} s");
        let mut rows = Vec::new();
        for _ in 0..args.runs {
            rows.push(propagation::idle(n, seconds).await?);
        }
        let share = measure::median(&rows);
        println!("CPU per idle node: {:.2} % of one core", share * 100.0);
        results.idle_cpu_share_per_node = rows;
    }
    if wants(args, Scenario::Ingest) {
        let count = if args.quick { 1_000 } else { 20_000 };
        println!("\n== ingest: {count} signed alerts over one connection");
        let mut rows = Vec::new();
        for _ in 0..args.runs {
            rows.push(single::ingest(count, 1024, args.expiring).await?);
        }
        let m = medians(
            &rows,
            &[
                |r| r.alerts_per_sec,
                |r| r.raw_verify_per_sec,
                |r| r.ratio,
                |r| r.stored as f64,
            ],
        );
        println!(
            "stored {:.0}/{count}; {:.0} alerts/s; raw verify_strict {:.0}/s; ratio {:.2}",
            m[3], m[0], m[1], m[2]
        );
        for (run, row) in rows.iter().enumerate() {
            println!(
                "run {run} cpu µs per alert: {}",
                by_thread(&row.cpu_us_per_alert_by_thread)
            );
        }
        results.ingest = rows;
    }
    if wants(args, Scenario::Ack) {
        let (raises, rate) = if args.quick { (50, 50.0) } else { (500, 50.0) };
        println!(
            "\n== durable acknowledgement: {raises} raises at {rate}/s through the control socket"
        );
        let mut rows = Vec::new();
        for _ in 0..args.runs {
            rows.push(single::ack(raises, rate).await?);
        }
        let m = medians(&rows, &[|r| r.p50_ms, |r| r.p99_ms]);
        println!(
            "raise → acknowledged (flushed): p50 {:.2} ms, p99 {:.2} ms",
            m[0], m[1]
        );
        results.ack = rows;
    }
    if wants(args, Scenario::Catchup) || wants(args, Scenario::Startup) {
        let (total, missing): (usize, &[usize]) = if args.quick {
            (2_000, &[0, 1, 100])
        } else {
            (args.stored, &args.missing)
        };
        let max_missing = missing.iter().copied().max().unwrap_or(0);
        println!("\n== preparing {total} stored alerts");
        let fixture = single::CatchUpFixture::prepare(total, max_missing, args.expiring)?;
        if wants(args, Scenario::Catchup) {
            println!("\n== catch-up sync: a node missing the newest d of {total} alerts");
            println!(
                "{:>6} {:>10} {:>10} {:>6} {:>9}",
                "d", "proto B", "budget B", "trips", "wall ms"
            );
            for &d in missing {
                let mut rows = Vec::new();
                for _ in 0..args.runs {
                    rows.push(single::catch_up(&fixture, d).await?);
                }
                let m = medians(
                    &rows,
                    &[
                        |r| r.protocol_bytes,
                        |r| r.budget_bytes,
                        |r| r.round_trips,
                        |r| r.wall_ms,
                    ],
                );
                println!(
                    "{d:>6} {:>10.0} {:>10.0} {:>6.0} {:>9.1}",
                    m[0], m[1], m[2], m[3]
                );
                results.catch_up.extend(rows);
            }
        }
        if wants(args, Scenario::Startup) {
            println!("\n== memory and start-up");
            let mut rows = Vec::new();
            for _ in 0..args.runs {
                rows.push(single::startup(&fixture, idle_node_rss_mib).await?);
            }
            let m = medians(
                &rows,
                &[
                    |r| r.idle_in_process_node_rss_mib,
                    |r| r.idle_daemon_rss_mib,
                    |r| r.start_to_status_page_ms,
                    |r| r.start_to_first_alert_ms,
                    |r| r.start_to_status_page_after_kill_ms,
                ],
            );
            println!("idle in-process node:               {:.1} MiB RSS", m[0]);
            println!("idle daemon holding {total} alerts: {:.1} MiB RSS", m[1]);
            println!(
                "start → status page answers:        {:.0} ms (after a clean stop), {:.0} ms (after kill -9: sled replays its log)",
                m[2], m[4]
            );
            println!("start → first alert delivered:      {:.0} ms", m[3]);
            results.startup = rows;
        }
    }
    if wants(args, Scenario::Migrate) {
        let total = if args.quick { 2_000 } else { args.stored };
        println!(
            "\n== store upgrade: a daemon holding {total} alerts in layout 2, then 1, rebuilds its store"
        );
        let generated = single::generate(total, args.expiring);
        println!(
            "{:>6} {:>11} {:>10} {:>11} {:>10} {:>9}",
            "layout", "rebuild ms", "answer ms", "before MiB", "after MiB", "peak RSS"
        );
        for layout in [2, 1] {
            let old = migrate::OldDataDir::prepare(layout, &generated.messages)?;
            let mut rows = Vec::new();
            for _ in 0..args.runs {
                rows.push(migrate::upgrade(&old).await?);
            }
            let m = medians(
                &rows,
                &[
                    |r| r.rebuild_ms,
                    |r| r.start_to_answering_ms,
                    |r| r.store_mib_before,
                    |r| r.store_mib_after,
                    |r| r.peak_rss_mib,
                ],
            );
            println!(
                "{layout:>6} {:>11.0} {:>10.0} {:>11.1} {:>10.1} {:>5.1} MiB",
                m[0], m[1], m[2], m[3], m[4]
            );
            results.migrate.extend(rows);
        }
    }
    Ok(results)
}

/// CPU per delivery by thread role, largest first: `tokio-rt-worker 612, sled-io 140, …`.
fn by_thread(roles: &std::collections::BTreeMap<String, f64>) -> String {
    let mut roles: Vec<(&String, &f64)> = roles.iter().collect();
    roles.sort_by(|a, b| b.1.total_cmp(a.1));
    roles
        .iter()
        .map(|(role, us)| format!("{role} {us:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
