//! Open-loop HTTP load (see `spargio_benches::http::open_load`):
//!
//! ```text
//! http_load <addr> <connections> <rate> <warmup secs> <measure secs> [path [heavy_every heavy_path]]
//! http_load 127.0.0.1:8080 64 12000 2 10 /plaintext 16 /burn
//! ```
//!
//! Prints the `RESULT` line `benches/http/run.sh` parses, and a readable
//! summary on stderr.

use spargio_benches::http::open_load::{self, OpenLoad};
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: http_load <addr> <connections> <rate> <warmup secs> <measure secs> \
         [path [heavy_every heavy_path]]"
    );
    ExitCode::from(2)
}

fn parse(args: &[String]) -> Option<OpenLoad> {
    let secs = |s: &String| s.parse::<f64>().ok().filter(|v| *v >= 0.0);
    Some(OpenLoad {
        addr: args.first()?.parse().ok()?,
        conns: args.get(1)?.parse().ok()?,
        rate: args.get(2)?.parse().ok()?,
        warmup: Duration::from_secs_f64(secs(args.get(3)?)?),
        measure: Duration::from_secs_f64(secs(args.get(4)?)?),
        path: args.get(5).cloned().unwrap_or_else(|| "/plaintext".into()),
        heavy_every: match args.get(6) {
            Some(n) => n.parse().ok()?,
            None => 0,
        },
        heavy_path: args.get(7).cloned().unwrap_or_else(|| "/burn".into()),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(5..=8).contains(&args.len()) {
        return usage();
    }
    let Some(load) = parse(&args) else {
        return usage();
    };
    match open_load::run(&load) {
        Ok(r) => {
            eprintln!(
                "http_load: offered {:.0} req/s, got {:.0}; p50 {} µs, p99 {} µs, p99.9 {} µs \
                 (light p50/p99 {:?} µs, heavy {:?} µs); {} errors, {} non-2xx",
                load.rate,
                r.requests as f64 / load.measure.as_secs_f64(),
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.plain_p50_p99_us,
                r.heavy_p50_p99_us,
                r.errors,
                r.non2xx
            );
            println!("{}", r.result_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("http_load: {e}");
            ExitCode::FAILURE
        }
    }
}
