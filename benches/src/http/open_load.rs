//! An open-loop HTTP/1.1 load generator for the rows where latency under a
//! fixed offered rate is the question (the skewed mix): `http_load`.
//!
//! wrk is closed-loop: each connection sends its next request when the
//! last response arrives, so when both cores are saturated the mean latency
//! is fixed by the connection count and the throughput (Little's law) and
//! says nothing about scheduling. Here each keep-alive connection sends on
//! a Poisson schedule ([`Pacer`]; the connections together offer `rate`
//! requests per second), one request in flight at a time, and a latency
//! counts from the time its request was *due*: a server that falls behind
//! is charged for the requests it kept waiting (no coordinated omission).
//!
//! Like `wrk -t1`, it runs on one thread. Responses must carry a
//! `Content-Length` (the bench servers' routes all do); anything else is
//! counted as an error and the connection is opened again.

use crate::quantile::nearest_rank;
use crate::service_pacer::Pacer;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to send and for how long.
#[derive(Clone, Debug)]
pub struct OpenLoad {
    /// The server.
    pub addr: SocketAddr,
    /// Keep-alive connections.
    pub conns: usize,
    /// Requests per second offered over all connections.
    pub rate: f64,
    /// Load before the measured window, not recorded.
    pub warmup: Duration,
    /// The measured window: requests *due* in it are recorded.
    pub measure: Duration,
    /// The target of most requests.
    pub path: String,
    /// Every `heavy_every`-th request (counted over all connections) goes
    /// to `heavy_path` instead; 0 sends none.
    pub heavy_every: u64,
    /// The target of the heavy requests.
    pub heavy_path: String,
}

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenResult {
    /// Responses to requests due in the measured window.
    pub requests: u64,
    /// The measured window in microseconds.
    pub duration_us: u64,
    /// Latency percentiles from the due time, in microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Connection or protocol failures (each reopens its connection).
    pub errors: u64,
    /// Responses whose status was not 2xx.
    pub non2xx: u64,
    /// p50 and p99 of the requests to `path` alone (microseconds).
    pub plain_p50_p99_us: (u64, u64),
    /// p50 and p99 of the requests to `heavy_path` alone (0 without any).
    pub heavy_p50_p99_us: (u64, u64),
}

impl OpenResult {
    /// The line `benches/http/run.sh` parses (the same fields as wrk's
    /// `report.lua`).
    pub fn result_line(&self) -> String {
        format!(
            "RESULT requests={} duration_us={} p50_us={} p99_us={} errors={} non2xx={}",
            self.requests, self.duration_us, self.p50_us, self.p99_us, self.errors, self.non2xx
        )
    }
}

/// Runs the load and returns what it measured.
pub fn run(load: &OpenLoad) -> io::Result<OpenResult> {
    if load.conns == 0 || load.rate <= 0.0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "http_load: connections and rate must be positive",
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(drive(load))
}

async fn drive(load: &OpenLoad) -> io::Result<OpenResult> {
    let start = Instant::now();
    let window = (start + load.warmup, start + load.warmup + load.measure);
    let gap = Duration::from_secs_f64(load.conns as f64 / load.rate);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(load.conns);
    for c in 0..load.conns {
        let conn = Connection {
            load: load.clone(),
            counter: counter.clone(),
            window,
        };
        let pacer = Pacer::new(gap, c as u64 + 1)?;
        tasks.push(tokio::spawn(conn.run(pacer)));
    }
    let mut latencies = Vec::new();
    let (mut plain, mut heavy) = (Vec::new(), Vec::new());
    let mut result = OpenResult {
        duration_us: load.measure.as_micros() as u64,
        ..OpenResult::default()
    };
    for t in tasks {
        let tally = t.await.map_err(io::Error::other)??;
        latencies.extend(tally.latencies_us.iter().map(|&(us, _)| us));
        for (us, is_heavy) in tally.latencies_us {
            if is_heavy {
                heavy.push(us)
            } else {
                plain.push(us)
            }
        }
        result.errors += tally.errors;
        result.non2xx += tally.non2xx;
    }
    latencies.sort_unstable();
    result.requests = latencies.len() as u64;
    result.p50_us = percentile(&latencies, 50.0);
    result.p99_us = percentile(&latencies, 99.0);
    result.p999_us = percentile(&latencies, 99.9);
    for (v, out) in [
        (&mut plain, &mut result.plain_p50_p99_us),
        (&mut heavy, &mut result.heavy_p50_p99_us),
    ] {
        v.sort_unstable();
        *out = (percentile(v, 50.0), percentile(v, 99.0));
    }
    Ok(result)
}

/// The `p`th percentile of sorted samples (0 when there are none).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    nearest_rank(sorted, p / 100.0).unwrap_or(0)
}

/// One connection's share of the load.
struct Connection {
    load: OpenLoad,
    counter: Arc<AtomicU64>,
    /// Requests due in `[window.0, window.1)` are recorded; none is sent
    /// after `window.1`.
    window: (Instant, Instant),
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    /// Latency and whether the request was a heavy one.
    latencies_us: Vec<(u64, bool)>,
    errors: u64,
    non2xx: u64,
}

impl Connection {
    async fn run(self, mut pacer: Pacer) -> io::Result<Tally> {
        let plain = request(&self.load.path);
        let heavy = request(&self.load.heavy_path);
        let mut tally = Tally::default();
        let mut stream = None;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let due = pacer.next().await?;
            if due >= self.window.1 {
                return Ok(tally);
            }
            let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
            let is_heavy = self.load.heavy_every != 0 && n.is_multiple_of(self.load.heavy_every);
            let req = if is_heavy { &heavy } else { &plain };
            let status = match exchange(&mut stream, self.load.addr, req, &mut buf).await {
                Ok(status) => status,
                Err(_) => {
                    // Counted as the responses are: only in the window.
                    tally.errors += u64::from(due >= self.window.0);
                    stream = None;
                    buf.clear();
                    continue;
                }
            };
            if due < self.window.0 {
                continue;
            }
            if !(200..300).contains(&status) {
                tally.non2xx += 1;
            }
            tally
                .latencies_us
                .push((due.elapsed().as_micros().max(1) as u64, is_heavy));
        }
    }
}

/// A keep-alive GET for `path`.
fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").into_bytes()
}

/// Sends `req` (opening the connection first if there is none) and reads
/// one response; returns its status.
async fn exchange(
    stream: &mut Option<TcpStream>,
    addr: SocketAddr,
    req: &[u8],
    buf: &mut Vec<u8>,
) -> io::Result<u16> {
    if stream.is_none() {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        *stream = Some(s);
    }
    let s = stream.as_mut().expect("connected above");
    s.write_all(req).await?;
    loop {
        if let Some((status, len)) = parse_response(buf)? {
            buf.drain(..len);
            return Ok(status);
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let n = s.read_buf(buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Parses one whole response at the start of `buf`: its status and its
/// length (head and body), or `None` when more bytes are needed.
fn parse_response(buf: &[u8]) -> io::Result<Option<(u16, usize)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("http_load: {what}"));
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut body_len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("a field line without a colon"));
        };
        if name.eq_ignore_ascii_case("content-length") {
            body_len = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad("Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported"));
        }
    }
    let body_len = body_len.ok_or_else(|| bad("a response without Content-Length"))?;
    let total = head_end + 4 + body_len;
    Ok((buf.len() >= total).then_some((status, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_whole_only_with_its_body() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\nhello";
        assert_eq!(parse_response(&r[..r.len() - 1]).unwrap(), None);
        assert_eq!(parse_response(&r[..20]).unwrap(), None);
        assert_eq!(parse_response(r).unwrap(), Some((200, r.len())));
        let two = [&r[..], b"HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n"].concat();
        assert_eq!(parse_response(&two).unwrap(), Some((200, r.len())));
        assert_eq!(
            parse_response(&two[r.len()..]).unwrap(),
            Some((503, two.len() - r.len()))
        );
    }

    #[test]
    fn responses_it_cannot_frame_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n").is_err());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&[], 99.0), 0);
    }
}
