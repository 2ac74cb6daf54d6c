//! Benchmark `listen_ingest`: durable push notifications per second through the real receiver
//! over loopback HTTP, 16 concurrent clients, with group commit — next to the same run with one
//! transaction (one fsync) per request as the baseline. Prints its figures, with the CPU time
//! the process (clients and receiver together) spent per notification; asserts nothing.
//!
//! The clients are the load generator, not what is measured, and share the 2 cores with the
//! receiver: each is one HTTP/1.1 keep-alive connection sending requests written out before the
//! clock starts (until 2026-11-27 they were reqwest, building each JSON body in the timed loop).
//!
//! Run: `cargo bench --bench listen_ingest` (NOTIFICATIONS=N to change the count, RUNS=R the
//! number of alternated pairs of runs, 5 by default: the pair of median ratio is reported).

use std::sync::Arc;
use std::time::{Duration, Instant};

use connector::entities::Entity;
use connector::receiver::{self, ReceiverSettings};
use connector::secret::Secret;
use connector::store::{LifecycleState, Store};

const CLIENTS: usize = 16;

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time of this process (the clients and the receiver, user + system) per
    /// notification, over the timed part of the run.
    cpu_per_notification: Duration,
}

/// CPU time of this process so far (every thread, user + system). The same as
/// `benches/common`'s `self_cpu`, which this bench does not include (it brings the sandbox).
fn process_cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// One client: an HTTP/1.1 connection kept alive, one request in flight at a time. It reads
/// what the receiver answers (a status line, headers with a `content-length`, that many bytes
/// of body) and nothing else: anything unexpected stops the bench.
struct Connection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: std::net::SocketAddr) -> Connection {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Connection {
            stream,
            buffer: Vec::with_capacity(1024),
        }
    }

    /// Sends one request and reads the whole response; its status.
    async fn post(&mut self, request: &[u8]) -> u16 {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(request)
            .await
            .expect("receiver reads");
        self.buffer.clear();
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..end]).expect("an ASCII head");
                let mut lines = head.split("\r\n");
                let status = lines
                    .next()
                    .and_then(|l| l.strip_prefix("HTTP/1.1 "))
                    .and_then(|l| l.get(..3))
                    .and_then(|s| s.parse().ok())
                    .expect("a status line");
                let length: usize = lines
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .expect("a content-length");
                let total = end + 4 + length;
                while self.buffer.len() < total {
                    self.read().await;
                }
                assert_eq!(self.buffer.len(), total, "one response per request");
                return status;
            }
            self.read().await;
        }
    }

    async fn read(&mut self) {
        use tokio::io::AsyncReadExt;
        let n = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .expect("receiver answers");
        assert!(n > 0, "the receiver closed the connection");
    }
}

async fn run(notifications: usize, group_commit: bool) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("connector.db");
    Store::open(&store_path)
        .unwrap()
        .transition(LifecycleState::Active, "bench")
        .unwrap();
    let running = receiver::start(ReceiverSettings {
        bind: "127.0.0.1:0".parse().unwrap(),
        path: "/push".into(),
        header_name: "x-connector-secret".parse().unwrap(),
        secret: Secret::new("bench-secret"),
        max_body_bytes: 32 << 20,
        max_connections: 64,
        prefix: "MC".into(),
        timezone: chrono_tz::America::New_York,
        store_path,
        catch_up_entities: vec![Entity::Items],
        group_commit,
    })
    .await
    .unwrap();
    // The load generator shares the 2 cores with the receiver: what it can do before the clock
    // starts, it does then — every request (headers and body) is written out beforehand, and
    // each client is a plain HTTP/1.1 keep-alive connection, not a general-purpose client.
    let addr = running.addr;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..notifications)
            .map(|i| {
                let body = serde_json::json!({
                    "Query": "MC-items", "CompanyId": "Company", "Id": format!("bench-{i}"),
                    "TimeStamp": 638680000000000000i64,
                    "Inserted": [{"InventoryID": format!("IT-{i}"), "Description": "Bench item",
                                  "LastModifiedDateTime": "2026-11-26T10:00:00.000"}],
                    "Deleted": [{"InventoryID": format!("IT-{i}"), "Description": "Old",
                                 "LastModifiedDateTime": "2026-11-25T10:00:00.000"}],
                    "AdditionalInfo": {}
                })
                .to_string();
                let mut request = format!(
                    "POST /push HTTP/1.1\r\nhost: {addr}\r\nx-connector-secret: bench-secret\r\n\
                     content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                request.extend_from_slice(body.as_bytes());
                request
            })
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let cpu_at_start = process_cpu();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (next, requests) = (next.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await;
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= notifications {
                    break;
                }
                let sent = Instant::now();
                let status = connection.post(&requests[i]).await;
                assert_eq!(status, 200);
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu() - cpu_at_start;
    running.stop().await.unwrap();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: notifications as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
        cpu_per_notification: cpu / notifications.max(1) as u32,
    }
}

fn main() {
    let notifications: usize = std::env::var("NOTIFICATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Paired runs, alternated: one run of each spread 3.6–5.8x on this shared 2-core VM; the
    // pair of median ratio is reported, every pair's ratio shown.
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
        .max(1);
    let mut pairs: Vec<(Figures, Figures)> = (0..runs)
        .map(|i| {
            let grouped = runtime.block_on(run(notifications, true));
            let baseline = runtime.block_on(run(notifications / 4, false));
            println!(
                "  pair {}/{runs}: {:.0}/s grouped, {:.0}/s baseline, ratio {:.1}x",
                i + 1,
                grouped.per_second,
                baseline.per_second,
                grouped.per_second / baseline.per_second
            );
            (grouped, baseline)
        })
        .collect();
    pairs.sort_by(|a, b| {
        (a.0.per_second / a.1.per_second).total_cmp(&(b.0.per_second / b.1.per_second))
    });
    let (grouped, baseline) = pairs.swap_remove(runs / 2);
    println!(
        "listen_ingest: {notifications} notifications, {CLIENTS} concurrent clients, synchronous=FULL; the pair of median ratio of {runs}"
    );
    println!(
        "  group commit : {:>8.0} notifications/s   p50 {:>6.2} ms   p99 {:>6.2} ms   CPU {:>4.0} µs/notification",
        grouped.per_second,
        grouped.p50.as_secs_f64() * 1e3,
        grouped.p99.as_secs_f64() * 1e3,
        grouped.cpu_per_notification.as_secs_f64() * 1e6
    );
    println!(
        "  baseline     : {:>8.0} notifications/s   p50 {:>6.2} ms   p99 {:>6.2} ms   CPU {:>4.0} µs/notification   (one fsync per request, {} notifications)",
        baseline.per_second,
        baseline.p50.as_secs_f64() * 1e3,
        baseline.p99.as_secs_f64() * 1e3,
        baseline.cpu_per_notification.as_secs_f64() * 1e6,
        notifications / 4
    );
    println!(
        "  ratio        : {:.1}x",
        grouped.per_second / baseline.per_second
    );
}
