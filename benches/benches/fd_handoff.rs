//! Handing accepted sockets from one ring to another: a normal fd on a
//! lock-free queue plus a `MSG_RING` doorbell (what spargio-service does)
//! against `MSG_RING` `SEND_FD` between fixed-file tables followed by
//! `FIXED_FD_INSTALL` on the target. See `spargio_benches::fd_handoff`.
//!
//! `cargo bench -p spargio-benches --bench fd_handoff`; prints, per way,
//! the wall time per socket and each thread's CPU time per socket, for
//! three runs of 100,000 sockets each.

use spargio_benches::fd_handoff::{run, Handoff};

const SOCKETS: u64 = 100_000;
const RUNS: usize = 3;

fn main() {
    // A lost message would block a ring wait for good: fail loudly instead.
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(300));
        eprintln!("fd_handoff: no result after 300 s; a hand-off was lost");
        std::process::exit(1);
    });
    // Warm-up: fault in both paths once.
    for how in Handoff::ALL {
        run(how, 2_000);
    }
    println!(
        "{:<40} {:>5} {:>12} {:>14} {:>16}",
        "hand-off", "run", "wall/socket", "sender cpu/s.", "receiver cpu/s."
    );
    for i in 0..RUNS {
        for how in Handoff::ALL {
            let r = run(how, SOCKETS);
            let per = |d: std::time::Duration| d.as_nanos() as f64 / r.sockets as f64;
            println!(
                "{:<40} {:>5} {:>9.0} ns {:>11.0} ns {:>13.0} ns",
                how.name(),
                i + 1,
                per(r.wall),
                per(r.sender_cpu),
                per(r.receiver_cpu)
            );
        }
    }
}
