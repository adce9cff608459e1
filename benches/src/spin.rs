//! A CPU burn that costs the same work on every peer: a fixed number of
//! loop steps per requested duration, calibrated once per process, so a
//! thread preempted mid-burn still does the same work rather than the
//! same wall time. (A wall-clock spin lets a peer with more threads than
//! cores finish its burns with less CPU: each preempted burn "ends" on
//! time.)

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One step of the busy loop: a multiply-xorshift that the optimizer cannot
/// fold away (the state goes through [`black_box`]).
fn step(x: u64) -> u64 {
    let x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29);
    black_box(x)
}

fn spin(iters: u64) -> u64 {
    let mut x = 1;
    for _ in 0..iters {
        x = step(x);
    }
    x
}

/// Loop steps per second of CPU on this machine: the fastest of a few
/// probes (the one least disturbed by other threads). Measured on first
/// use; call it before a measurement starts so the probe runs on a quiet
/// machine.
pub fn steps_per_sec() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        const PROBE: u64 = 200_000;
        let best = (0..5)
            .map(|_| {
                let start = Instant::now();
                black_box(spin(PROBE));
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_millis(1))
            .max(Duration::from_nanos(1));
        PROBE as f64 / best.as_secs_f64()
    })
}

/// Spins for about `d` of CPU time (see the module doc).
pub fn burn(d: Duration) {
    if d.is_zero() {
        return;
    }
    let iters = (steps_per_sec() * d.as_secs_f64()) as u64;
    black_box(spin(iters.max(1)));
}
