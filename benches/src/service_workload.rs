//! The service rows: what the load generator sends and the tower service
//! every server peer runs.
//!
//! Every request carries a 64-byte payload whose first bytes say how much
//! CPU the server should burn for it:
//!
//! ```text
//! byte 0     kind: 0 = cheap, 1 = heavy, 2 = heavy, yielding between
//!            slices of [`YIELD_SLICE`]
//! bytes 1..5 burn in microseconds (big-endian u32; heavy requests only)
//! byte 5     connection index, byte 6 phase, byte 7 request index
//! bytes 8..  filler
//! ```
//!
//! The service ([`WorkService`]) reads that, spins a calibrated number of
//! loop steps for the burn ([`crate::spin`]; inside its response future's
//! poll, so a stealable placement can move it), and echoes the request. A yielding
//! heavy request burns in slices, waking its own task and returning
//! `Pending` between them (the runtime-agnostic cooperative yield), so the
//! same code yields on every runtime. The server
//! never needs to know the row: the payload decides.

use bytes::Bytes;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Client connections per run.
pub const CONNECTIONS: usize = 64;
/// Requests each connection makes per iteration.
pub const REQUESTS_PER_CONN: u32 = 32;
/// Requests per iteration.
pub const REQUESTS_PER_ITER: u64 = CONNECTIONS as u64 * REQUESTS_PER_CONN as u64;
/// Request (and response) payload size.
pub const PAYLOAD_LEN: usize = 64;

/// `payload[0]` of a cheap request.
pub const KIND_CHEAP: u8 = 0;
/// `payload[0]` of a heavy request.
pub const KIND_HEAVY: u8 = 1;
/// `payload[0]` of a heavy request that yields between slices.
pub const KIND_HEAVY_YIELDING: u8 = 2;
/// The burn between two yields of a yielding heavy request.
pub const YIELD_SLICE: Duration = Duration::from_micros(100);

/// Skewed row: one request in this many is heavy ...
pub const SKEW_EVERY: u32 = 16;
/// ... and burns this long.
pub const SKEW_BURN: Duration = Duration::from_millis(1);

/// Hot-rotation row: phases per iteration; in phase `p` the connections
/// `c` with `c % ROTATION_PHASES == p` are hot ...
pub const ROTATION_PHASES: u32 = 8;
/// ... and each of their requests burns this long.
pub const ROTATION_BURN: Duration = Duration::from_micros(200);

/// The service rows, in the order they are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceRow {
    /// Every request cheap: echo 64 bytes.
    Cheap,
    /// One request in 16 burns ~1 ms of CPU, staggered over connections
    /// (request `j` of connection `c` is heavy when `(c + j) % 16 == 0`).
    Skewed,
    /// As `Skewed`, but a heavy handler yields after every
    /// [`YIELD_SLICE`] of its burn.
    SkewedYielding,
    /// 8 phases of 4 requests per connection with a barrier between
    /// phases; in phase `p` the connections `c % 8 == p` are hot and each of
    /// their requests burns ~200 µs. Round-robin accept puts connection `c`
    /// on shard `c % 2`, so a phase's hot set shares one shard.
    HotRotation,
}

impl ServiceRow {
    /// Every row.
    pub const ALL: [ServiceRow; 4] = [
        ServiceRow::Cheap,
        ServiceRow::Skewed,
        ServiceRow::SkewedYielding,
        ServiceRow::HotRotation,
    ];

    /// The criterion group name / table label.
    pub fn name(self) -> &'static str {
        match self {
            ServiceRow::Cheap => "service_cheap",
            ServiceRow::Skewed => "service_skewed",
            ServiceRow::SkewedYielding => "service_skewed_yielding",
            ServiceRow::HotRotation => "service_hot_rotation",
        }
    }

    /// The offered rate (requests per second, all connections together)
    /// of the row's open-loop run: about half of what the servers reach in
    /// closed loop on the 2-core machine, so queues come from bursts and
    /// skew, not from a saturated machine.
    pub fn paced_rate(self) -> f64 {
        match self {
            ServiceRow::Cheap => 60_000.0,
            ServiceRow::Skewed | ServiceRow::SkewedYielding => 12_000.0,
            ServiceRow::HotRotation => 20_000.0,
        }
    }

    /// Phases per iteration; all connections finish a phase before the
    /// next starts.
    pub fn phases(self) -> u32 {
        match self {
            ServiceRow::HotRotation => ROTATION_PHASES,
            ServiceRow::Cheap | ServiceRow::Skewed | ServiceRow::SkewedYielding => 1,
        }
    }

    /// Requests per connection per phase.
    pub fn per_phase(self) -> u32 {
        REQUESTS_PER_CONN / self.phases()
    }

    /// The CPU request `i` of phase `phase` on connection `conn` asks the
    /// server to burn; `None` for a cheap request.
    pub fn burn(self, conn: usize, phase: u32, i: u32) -> Option<Duration> {
        match self {
            ServiceRow::Cheap => None,
            ServiceRow::Skewed | ServiceRow::SkewedYielding => {
                let j = phase * self.per_phase() + i;
                (conn as u32 + j)
                    .is_multiple_of(SKEW_EVERY)
                    .then_some(SKEW_BURN)
            }
            ServiceRow::HotRotation => {
                (conn as u32 % ROTATION_PHASES == phase % ROTATION_PHASES).then_some(ROTATION_BURN)
            }
        }
    }

    /// CPU the server is asked to burn per iteration.
    pub fn burn_per_iter(self) -> Duration {
        let mut total = Duration::ZERO;
        for conn in 0..CONNECTIONS {
            for phase in 0..self.phases() {
                for i in 0..self.per_phase() {
                    total += self.burn(conn, phase, i).unwrap_or_default();
                }
            }
        }
        total
    }

    /// Writes the payload of that request into `buf`.
    pub fn payload(self, conn: usize, phase: u32, i: u32, buf: &mut [u8; PAYLOAD_LEN]) {
        let burn = self.burn(conn, phase, i);
        buf[0] = match (burn, self) {
            (None, _) => KIND_CHEAP,
            (Some(_), ServiceRow::SkewedYielding) => KIND_HEAVY_YIELDING,
            (Some(_), _) => KIND_HEAVY,
        };
        let us = burn.map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
        buf[1..5].copy_from_slice(&us.to_be_bytes());
        buf[5] = conn as u8;
        buf[6] = phase as u8;
        buf[7] = i as u8;
        for (k, b) in buf.iter_mut().enumerate().skip(8) {
            *b = k as u8;
        }
    }
}

/// Whether a request payload is heavy.
pub fn is_heavy(payload: &[u8]) -> bool {
    matches!(payload.first(), Some(&(KIND_HEAVY | KIND_HEAVY_YIELDING)))
}

/// Whether a heavy request yields between slices of its burn.
pub fn yields(payload: &[u8]) -> bool {
    payload.first() == Some(&KIND_HEAVY_YIELDING)
}

/// The CPU a request payload asks for.
pub fn requested_burn(payload: &[u8]) -> Duration {
    match payload.get(1..5) {
        Some(b) if is_heavy(payload) => {
            Duration::from_micros(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        }
        _ => Duration::ZERO,
    }
}

/// Spins for about `d` of CPU time: the same loop steps on every peer
/// (see [`crate::spin`]), not the same wall time, which a peer with more
/// threads than cores would finish with less work.
pub fn burn(d: Duration) {
    crate::spin::burn(d);
}

/// The tower service every server peer runs: burns what the payload asks
/// for, then echoes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkService;

impl tower_service::Service<Bytes> for WorkService {
    type Response = Bytes;
    type Error = Infallible;
    type Future = WorkFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Bytes) -> WorkFuture {
        let left = requested_burn(&req);
        WorkFuture {
            req: Some(req),
            left,
        }
    }
}

/// [`WorkService`]'s response future: the work happens in its poll, not in
/// `call`, as in a handler that computes its answer: all of it in one poll,
/// or a [`YIELD_SLICE`] per poll for a yielding request.
#[derive(Debug)]
pub struct WorkFuture {
    req: Option<Bytes>,
    left: Duration,
}

impl Future for WorkFuture {
    type Output = Result<Bytes, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let req = self
            .req
            .as_ref()
            .expect("WorkFuture polled after completion");
        if yields(req) && self.left > YIELD_SLICE {
            burn(YIELD_SLICE);
            self.left -= YIELD_SLICE;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        burn(self.left);
        self.left = Duration::ZERO;
        let req = self.req.take().expect("checked above");
        Poll::Ready(Ok(req))
    }
}
