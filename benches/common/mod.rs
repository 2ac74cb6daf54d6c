//! What every sync bench shares: a sandbox (simulated Acumatica + Magento) running in the
//! bench process on its own runtime, a `connector.toml` for it in a temporary folder, the
//! release `connector` binary run as a child process against it (what cron runs, so the
//! figures include process start, the store and the real HTTP clients), the sandbox's own
//! counters read before and after, and one way of printing the figures.
//!
//! The binary is the one cargo builds for benches (`CARGO_BIN_EXE_connector`, the bench
//! profile = release), so `cargo bench --bench NAME` measures the code of the same build.
//! Running it as a child also gives its peak RSS from `wait4`.

#![allow(dead_code)] // each bench uses part of it

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connector::entities::Entity;
use connector::sandbox::acumatica::{AcumaticaOptions, Counters};
use connector::sandbox::{Faults, Sandbox, SandboxOptions, config_file};
use connector::store::{Delivery, Mapped, NewMessage, Store};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_connector");

/// An environment variable as a number, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The machine, for the figures' heading.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

/// The licence and client settings of one measured configuration.
#[derive(Clone, Debug)]
pub struct Limits {
    pub magento_concurrency: u32,
    pub acumatica_sessions: u32,
    pub acumatica_concurrency: u32,
    pub requests_per_minute: u32,
    pub batch_size: u32,
}

impl Limits {
    /// The connector's defaults for the sandbox licence (2 sessions, 4 requests, 600/min).
    pub fn standard() -> Limits {
        Limits {
            magento_concurrency: 8,
            acumatica_sessions: 2,
            acumatica_concurrency: 4,
            requests_per_minute: 600,
            batch_size: 100,
        }
    }

    /// The naive configuration: one request at a time, batches of one.
    pub fn naive(&self) -> Limits {
        Limits {
            magento_concurrency: 1,
            acumatica_sessions: 1,
            acumatica_concurrency: 1,
            batch_size: 1,
            ..self.clone()
        }
    }
}

/// A sandbox and a connector configured for it.
pub struct Env {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub limits: Limits,
    runtime: tokio::runtime::Runtime,
    cpu_mark: std::sync::Mutex<Duration>,
}

/// One run of the binary.
pub struct Run {
    pub code: i32,
    pub elapsed: Duration,
    /// Peak resident set size of the child, in KiB (its `VmHWM`).
    pub max_rss_kib: i64,
    /// CPU time of the child (user + system).
    pub cpu: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or(Value::Null)
    }
}

/// What the sandbox counted during one measured run.
#[derive(Debug, Default)]
pub struct Calls {
    /// Magento requests, all routes.
    pub magento: u64,
    /// Magento requests per route.
    pub magento_routes: std::collections::BTreeMap<String, u64>,
    /// Acumatica requests (logins, logouts and OData reads included).
    pub acumatica: u64,
    /// Magento requests that arrived while `magento_concurrency` were already in flight.
    pub magento_over_cap: u64,
    pub magento_peak_in_flight: u64,
    /// Acumatica requests in flight beyond `acumatica_concurrency`.
    pub acumatica_over_cap: u64,
    pub acumatica_peak_in_flight: u64,
    /// Logins refused and requests declined by the simulated licence.
    pub acumatica_refused: u64,
    /// The most requests the sandbox saw in any 60 s window (since the sandbox started).
    pub acumatica_peak_per_minute: u64,
    pub acumatica_peak_sessions: u64,
    /// Every cap the sandbox checks, broken during the run: must be 0.
    pub violations: u64,
    /// From the first request to the end of the last, per system.
    pub magento_window: Option<Duration>,
    pub acumatica_window: Option<Duration>,
    /// CPU time the bench process (the sandbox, and the bench's own waiting) used.
    pub sandbox_cpu: Duration,
    /// Magento's requests' summed time, arrival to reply: over the window and the cap, how
    /// full the client kept its slots; over the calls, the mean time a request took.
    pub magento_busy: Duration,
}

impl Env {
    /// Starts a sandbox with `options` (its Acumatica licence set from `limits`) and writes a
    /// `connector.toml` for it with `limits`.
    pub fn start(mut options: SandboxOptions, limits: Limits) -> Env {
        options.acumatica = AcumaticaOptions {
            max_sessions: limits.acumatica_sessions as usize,
            max_concurrent_requests: limits.acumatica_concurrency as usize,
            requests_per_minute: limits.requests_per_minute as u64,
            ..options.acumatica
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sandbox = runtime
            .block_on(Sandbox::start(options))
            .expect("start the sandbox");
        let dir = tempfile::tempdir().expect("temporary folder");
        let env = Env {
            sandbox,
            dir,
            limits: limits.clone(),
            runtime,
            cpu_mark: std::sync::Mutex::new(Duration::ZERO),
        };
        env.configure(&limits);
        env
    }

    /// Rewrites connector.toml for `limits` (the sandbox's licence stays as started).
    pub fn configure(&self, limits: &Limits) {
        let receiver = config_file::free_loopback_port().expect("free port");
        let mut text = config_file::render(&self.sandbox, receiver);
        for (from, to) in [
            (
                "max_sessions = 2",
                format!("max_sessions = {}", limits.acumatica_sessions),
            ),
            (
                "max_concurrent_requests = 4",
                format!("max_concurrent_requests = {}", limits.acumatica_concurrency),
            ),
            (
                "requests_per_minute = 600",
                format!("requests_per_minute = {}", limits.requests_per_minute),
            ),
            (
                "max_concurrent_requests = 8",
                format!("max_concurrent_requests = {}", limits.magento_concurrency),
            ),
            (
                "batch_size = 100",
                format!("batch_size = {}", limits.batch_size),
            ),
            // Changes come by push (queued below); the batch path's re-read window would
            // re-read the whole seeded catalogue, whose rows all share one time.
            ("overlap_seconds = 300", "overlap_seconds = 0".to_string()),
        ] {
            assert!(text.contains(from), "the sandbox config lacks {from}");
            text = text.replacen(from, &to, 1);
        }
        std::fs::write(self.dir.path().join("connector.toml"), text).expect("write config");
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("connector.db")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.store_path()).expect("open the store")
    }

    /// `connector ARGS…` in the config's folder; its exit code, time and peak RSS.
    pub fn connector(&self, args: &[&str]) -> Run {
        let out_path = self.dir.path().join("bench.stdout");
        let err_path = self.dir.path().join("bench.stderr");
        let started = Instant::now();
        // BENCH_WRAP="perf record -g -o /tmp/sync.data --" runs the measured binary under a
        // profiler (the figures then include its overhead).
        let wrap: Vec<String> = std::env::var("BENCH_WRAP")
            .map(|w| w.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let (program, before) = match wrap.split_first() {
            Some((program, rest)) => (program.clone(), rest.to_vec()),
            None => (BIN.to_string(), Vec::new()),
        };
        let mut command = Command::new(program);
        command.args(before);
        if !wrap.is_empty() {
            command.arg(BIN);
        }
        // Reaped by `wait4` below, which also gives its peak RSS and CPU time.
        #[allow(clippy::zombie_processes)]
        let child = command
            .args(args)
            .current_dir(self.dir.path())
            .env("CONNECTOR_CONFIG", self.dir.path().join("connector.toml"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("start the connector binary");
        let (code, max_rss_kib, cpu) = wait4(child.id() as libc::pid_t);
        let elapsed = started.elapsed();
        Run {
            code,
            elapsed,
            max_rss_kib,
            cpu,
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// Like [`Env::connector`], panicking unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.connector(args);
        assert_eq!(
            run.code, 0,
            "connector {args:?} exited {}\n{}\n{}",
            run.code, run.stdout, run.stderr
        );
        run
    }

    /// The fixed latency both systems add to every request.
    pub fn set_latency(&self, ms: u64) {
        for faults in [&self.sandbox.magento.faults, &self.sandbox.acumatica.faults] {
            faults.set_faults(Faults {
                latency_ms: ms,
                ..faults.faults()
            });
        }
    }

    /// Runs `f` on the sandbox's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Starts counting one measured run: clears the per-run counters, sets the caps.
    pub fn start_counting(&self, limits: &Limits) -> Counters {
        *self.cpu_mark.lock().unwrap() = self_cpu();
        let m = &self.sandbox.magento.faults;
        m.reset_counts();
        m.set_concurrency_cap(limits.magento_concurrency as u64);
        let a = &self.sandbox.acumatica.faults;
        a.reset_counts();
        a.set_concurrency_cap(limits.acumatica_concurrency as u64);
        self.sandbox.acumatica.counters()
    }

    /// What the sandbox counted since [`Env::start_counting`].
    pub fn calls(&self, before: &Counters) -> Calls {
        let m = &self.sandbox.magento.faults;
        let a = &self.sandbox.acumatica.faults;
        let after = self.sandbox.acumatica.counters();
        let refused = after.limit_violations() - before.limit_violations();
        // Requests over the client's concurrency (counted by the sandbox as they arrive),
        // logins and requests the licence refused, and any 60 s window over the licence's
        // per-minute limit (the sandbox keeps the peak since it started).
        let violations = m.over_cap()
            + a.over_cap()
            + refused
            + (after.peak_requests_per_minute as u64)
                .saturating_sub(self.limits.requests_per_minute as u64);
        Calls {
            sandbox_cpu: self_cpu().saturating_sub(*self.cpu_mark.lock().unwrap()),
            violations,
            magento_window: m.active_window(),
            magento_busy: m.busy(),
            acumatica_window: a.active_window(),
            magento: m.total_requests(),
            magento_routes: m.request_counts(),
            acumatica: a.total_requests(),
            magento_over_cap: m.over_cap(),
            magento_peak_in_flight: m.peak_in_flight(),
            acumatica_over_cap: a.over_cap(),
            acumatica_peak_in_flight: a.peak_in_flight(),
            acumatica_refused: refused,
            acumatica_peak_per_minute: after.peak_requests_per_minute as u64,
            acumatica_peak_sessions: after.peak_sessions as u64,
        }
    }

    /// Queues `rows` of `entity` as if pushed by Acumatica (the receiver queues the same
    /// messages): one transaction. `tag` makes the dedupe keys unique to this batch.
    pub fn queue_rows(&self, entity: Entity, rows: &[Value], tag: &str) {
        let messages: Vec<NewMessage> = rows
            .iter()
            .map(|row| {
                let (key, version) = connector::push::key_and_version(
                    entity,
                    row,
                    chrono_tz::America::New_York,
                    None,
                )
                .expect("a bench row has its key and version");
                let version = version.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                connector::sync::engine::collected_message(entity, key, version, row, Some(tag))
            })
            .collect();
        let mut store = self.store();
        for chunk in messages.chunks(20_000) {
            store
                .enqueue_collected(entity.name(), chunk, None)
                .expect("queue the bench rows");
        }
    }

    /// Marks `skus` as products the items flow delivered before (the steady state of a
    /// catalogue already in Magento), in one transaction.
    pub fn map_items(&self, skus: &[String]) {
        let deliveries: Vec<Delivery<'_>> = skus
            .iter()
            .map(|sku| Delivery {
                message_ids: &[],
                entity: "items",
                source_key: sku,
                target_key: sku,
                payload_hash: "bench",
                version: "2000-01-01T00:00:00.000Z",
                line_mappings: None,
                mapped: Mapped::Unknown,
            })
            .collect();
        self.store()
            .record_deliveries(&deliveries)
            .expect("map the items");
    }

    /// Sets `entity`'s watermark past every seeded row and closes the catch-up `init` asked
    /// for, so the batch path's read finds nothing (the measured run's changes come by push).
    /// The sandbox gives every write a stamp 1 ms after the last, so a large seed's stamps
    /// run minutes past its start: the watermark is a day ahead.
    pub fn watermark_now(&self, entity: Entity) {
        let now = (chrono::Utc::now() + chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let store = self.store();
        store
            .set_cursor(entity.name(), &now)
            .expect("set the watermark");
        store
            .close_catch_ups(entity.name())
            .expect("close the catch-up");
    }
}

/// A version (the GI's last-modified column, tenant time, no offset) newer than anything
/// seeded or delivered: `minutes` after now.
pub fn version_in(minutes: i64) -> String {
    (chrono::Utc::now().with_timezone(&chrono_tz::America::New_York)
        + chrono::Duration::minutes(minutes))
    .format("%Y-%m-%dT%H:%M:%S%.3f")
    .to_string()
}

/// CPU time of this process so far (user + system).
fn self_cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The child's peak resident set (`VmHWM` in /proc/PID/status), in KiB, while it runs.
fn vm_hwm(pid: libc::pid_t) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for the child and returns its exit code, peak RSS (KiB) and CPU time.
///
/// The peak RSS is the child's own `VmHWM`, read every 2 ms until it exits (monotonic, so the
/// last reading is its peak to within the last 2 ms). Not `ru_maxrss`: Linux carries the
/// high-water mark of the address space a child had before `exec` into it, and the child is
/// spawned from this process — which holds the whole simulated catalogue — so `ru_maxrss`
/// measured the bench, not the connector (it grew 13x from 1,000 to 20,000 items while the
/// connector's heap peak, per valgrind massif, stayed at 2.6 MB).
fn wait4(pid: libc::pid_t) -> (i32, i64, Duration) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we started.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut peak = 0;
    loop {
        if let Some(kib) = vm_hwm(pid) {
            peak = peak.max(kib);
        }
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4 failed");
        std::thread::sleep(Duration::from_millis(2));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (code, peak, time(usage.ru_utime) + time(usage.ru_stime))
}

/// One measured configuration's figures.
pub struct Figures {
    pub label: String,
    pub records: u64,
    pub elapsed: Duration,
    pub calls: Calls,
    /// Calls on the system that bounds the run, and that system's calls per second bound.
    pub bound_calls: u64,
    pub bound_calls_per_second: f64,
    pub limits: Limits,
    /// How long the bounding system was in use (first request to last reply): the rate
    /// while the connector was sending, without process start, store and the other system.
    pub window: Option<Duration>,
    /// The connector's CPU time in the run.
    pub cpu: Duration,
}

impl Figures {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    /// min(concurrency / L, requests per minute / 60) × records per call.
    pub fn bound(&self) -> f64 {
        let per_call = self.records as f64 / self.bound_calls.max(1) as f64;
        self.bound_calls_per_second * per_call
    }

    pub fn ratio(&self) -> f64 {
        self.records_per_second() / self.bound()
    }

    pub fn print(&self) {
        let r = self.records.max(1) as f64;
        if let Some(window) = self.window {
            let rate = self.records as f64 / window.as_secs_f64();
            println!(
                "  {:<10} while sending: {:>7.2} s = {:>9.1} records/s = {:>5.1} % of the bound (CPU: connector {:.2} s, sandbox {:.2} s)",
                self.label,
                window.as_secs_f64(),
                rate,
                rate / self.bound() * 100.0,
                self.cpu.as_secs_f64(),
                self.calls.sandbox_cpu.as_secs_f64()
            );
        }
        // Where a shortfall lies: slots the client left empty, or requests slower than L.
        if let (Some(window), true) = (self.calls.magento_window, self.calls.magento > 0) {
            println!(
                "  {:<10} Magento slots busy {:>5.1} % of its window; mean request {:.2} ms (arrival to reply)",
                self.label,
                self.calls.magento_busy.as_secs_f64()
                    / (window.as_secs_f64() * self.limits.magento_concurrency.max(1) as f64)
                    * 100.0,
                self.calls.magento_busy.as_secs_f64() * 1000.0 / self.calls.magento as f64
            );
        }
        println!(
            "  {:<10} {:>7} records in {:>7.2} s = {:>9.1} records/s | bound {:>9.1}/s | ratio {:>5.1} % | calls/record: Magento {:.4}, Acumatica {:.4} | cap violations {} (Magento peak {}/{} in flight, Acumatica peak {}/{} in flight, {}/min peak, {} refused)",
            self.label,
            self.records,
            self.elapsed.as_secs_f64(),
            self.records_per_second(),
            self.bound(),
            self.ratio() * 100.0,
            self.calls.magento as f64 / r,
            self.calls.acumatica as f64 / r,
            self.calls.violations,
            self.calls.magento_peak_in_flight,
            self.limits.magento_concurrency,
            self.calls.acumatica_peak_in_flight,
            self.limits.acumatica_concurrency,
            self.calls.acumatica_peak_per_minute,
            self.calls.acumatica_refused,
        );
    }
}

/// The Magento calls of one route template (`"POST /rest/{store}/V1/products/base-prices"`).
pub fn route(calls: &Calls, suffix: &str) -> u64 {
    calls
        .magento_routes
        .iter()
        .filter(|(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v)
        .sum()
}

/// Prints the gain of the tuned configuration over the naive one.
pub fn print_gain(tuned: &Figures, naive: &Figures) {
    println!(
        "  gain       {:.1}x records/s over the naive configuration (concurrency 1, batch size 1)",
        tuned.records_per_second() / naive.records_per_second()
    );
}

/// Queues `rows` of `entity` (as pushed), then times `connector sync --entity NAME` with
/// `limits` and latency `latency` ms; every record must be delivered. The bound is Magento's:
/// concurrency / L × records per Magento call.
pub fn measure_queued(
    env: &Env,
    entity: Entity,
    label: &str,
    rows: &[Value],
    limits: &Limits,
    latency: u64,
) -> Figures {
    measure_queued_tagged(env, entity, label, label, rows, limits, latency)
}

/// [`measure_queued`] `RUNS` times (default `default_runs`) on one sandbox and store, each run
/// with the rows `rows_of(run)` (each run's must differ from the last, or nothing is sent):
/// prints every run's ratio and returns the run of median ratio. On this shared 2-core VM one
/// run of the same build spread ±2–3 points; the median of several is the figure to compare.
pub fn measure_queued_median(
    env: &Env,
    entity: Entity,
    label: &str,
    default_runs: usize,
    rows_of: impl Fn(usize) -> Vec<Value>,
    limits: &Limits,
    latency: u64,
) -> Figures {
    let runs = env_or("RUNS", default_runs).max(1);
    let mut all: Vec<Figures> = (0..runs)
        .map(|run| {
            let figures = measure_queued_tagged(
                env,
                entity,
                label,
                &format!("{label}-{run}"),
                &rows_of(run),
                limits,
                latency,
            );
            let sending = figures
                .window
                .map(|w| figures.records as f64 / w.as_secs_f64() / figures.bound() * 100.0)
                .unwrap_or(0.0);
            println!(
                "  {label} run {}/{runs}: {} records in {:.2} s, ratio {:.1} % ({:.1} % while sending), {} cap violations",
                run + 1,
                figures.records,
                figures.elapsed.as_secs_f64(),
                figures.ratio() * 100.0,
                sending,
                figures.calls.violations
            );
            figures
        })
        .collect();
    all.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    let mut median = all.swap_remove(runs / 2);
    if runs > 1 {
        median.label = format!("{label} (median of {runs})");
    }
    median
}

fn measure_queued_tagged(
    env: &Env,
    entity: Entity,
    label: &str,
    tag: &str,
    rows: &[Value],
    limits: &Limits,
    latency: u64,
) -> Figures {
    env.configure(limits);
    env.queue_rows(entity, rows, tag);
    env.watermark_now(entity);
    env.set_latency(latency);
    let before = env.start_counting(limits);
    let run = env.ok(&["sync", "--json", "--entity", entity.name()]);
    let calls = env.calls(&before);
    env.set_latency(0);
    let delivered = run.json()["entities"][entity.name()]["delivered"]
        .as_u64()
        .unwrap_or(0);
    if delivered != rows.len() as u64 {
        println!("  {label}: of {} queued, {}", rows.len(), run.stdout.trim());
    }
    Figures {
        label: label.into(),
        records: delivered,
        elapsed: run.elapsed,
        cpu: run.cpu,
        bound_calls: calls.magento,
        bound_calls_per_second: limits.magento_concurrency as f64
            / (latency.max(1) as f64 / 1000.0),
        window: calls.magento_window,
        calls,
        limits: limits.clone(),
    }
}
