//! Exhaustive check of the parking protocol described in
//! `src/shard/park.rs`, over every interleaving of one parking shard and
//! up to two wakers. Every access in the real protocol is SeqCst or fenced
//! by SeqCst fences, so sequentially consistent interleavings are the
//! executions to check.
//!
//! Properties:
//! - no lost wake-up: whenever the shard blocks, either a doorbell is
//!   pending or will be rung, or it has no work;
//! - no herd: at most one doorbell per park.
//!
//! The same checker run on a broken variant (the waker reads the flag
//! before publishing its task) must find a lost wake-up, which shows the
//! check can fail.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Correct,
    /// Waker checks `sleeping` before pushing its task.
    CheckBeforePush,
}

#[derive(Clone, Debug)]
struct State {
    queue: u32,
    sleeping: bool,
    doorbells: u32,
    /// Shard program counter: 0 set sleeping, 1 re-check, 2 block, 3 done.
    shard_pc: u8,
    shard_blocked_with_work: bool,
    /// Per waker program counter: 0 first step, 1 second step, 2 done.
    waker_pc: Vec<u8>,
    /// For CheckBeforePush: what the waker saw.
    waker_saw_sleeping: Vec<bool>,
}

#[derive(Default, Debug)]
struct Outcome {
    executions: u64,
    lost_wakeups: u64,
    herds: u64,
}

fn step_shard(s: &mut State) {
    match s.shard_pc {
        0 => {
            s.sleeping = true;
            s.shard_pc = 1;
        }
        1 => {
            if s.queue > 0 {
                s.sleeping = false;
                s.shard_pc = 3; // runs the work instead of blocking
            } else {
                s.shard_pc = 2;
            }
        }
        2 => {
            // Blocks in io_uring_enter. It returns when a doorbell CQE is
            // there; we record whether it blocked although work is queued
            // and no doorbell is (or will be) pending: checked at the end.
            s.shard_pc = 3;
            s.shard_blocked_with_work = true;
        }
        _ => unreachable!(),
    }
}

fn step_waker(s: &mut State, w: usize, v: Variant) {
    match (v, s.waker_pc[w]) {
        (Variant::Correct, 0) => {
            s.queue += 1;
        }
        (Variant::Correct, 1) => {
            if s.sleeping {
                s.sleeping = false;
                s.doorbells += 1;
            }
        }
        (Variant::CheckBeforePush, 0) => {
            s.waker_saw_sleeping[w] = s.sleeping;
            if s.sleeping {
                s.sleeping = false;
            }
        }
        (Variant::CheckBeforePush, 1) => {
            s.queue += 1;
            if s.waker_saw_sleeping[w] {
                s.doorbells += 1;
            }
        }
        _ => unreachable!(),
    }
    s.waker_pc[w] += 1;
}

fn explore(s: State, v: Variant, out: &mut Outcome) {
    let mut moved = false;
    if s.shard_pc < 3 {
        let mut n = s.clone();
        step_shard(&mut n);
        explore(n, v, out);
        moved = true;
    }
    for w in 0..s.waker_pc.len() {
        if s.waker_pc[w] < 2 {
            let mut n = s.clone();
            step_waker(&mut n, w, v);
            explore(n, v, out);
            moved = true;
        }
    }
    if !moved {
        out.executions += 1;
        // The shard blocked: that is only fine if a doorbell reached it (the
        // CQE makes its enter return) or nothing was ever queued for it.
        if s.shard_blocked_with_work && s.doorbells == 0 && s.queue > 0 {
            out.lost_wakeups += 1;
        }
        if s.doorbells > 1 {
            out.herds += 1;
        }
    }
}

fn check(wakers: usize, v: Variant) -> Outcome {
    let mut out = Outcome::default();
    let s = State {
        queue: 0,
        sleeping: false,
        doorbells: 0,
        shard_pc: 0,
        shard_blocked_with_work: false,
        waker_pc: vec![0; wakers],
        waker_saw_sleeping: vec![false; wakers],
    };
    explore(s, v, &mut out);
    out
}

#[test]
fn protocol_never_loses_a_wakeup_and_never_herds() {
    for wakers in 1..=3 {
        let out = check(wakers, Variant::Correct);
        assert!(out.executions > 1, "{out:?}");
        assert_eq!(out.lost_wakeups, 0, "{wakers} wakers: {out:?}");
        assert_eq!(out.herds, 0, "{wakers} wakers: {out:?}");
    }
}

#[test]
fn the_checker_catches_a_broken_protocol() {
    let out = check(1, Variant::CheckBeforePush);
    assert!(out.lost_wakeups > 0, "{out:?}");
}
