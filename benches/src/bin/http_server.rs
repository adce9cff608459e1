//! Starts one of the HTTP servers that `benches/http/run.sh` loads with
//! wrk: `http_server <name> <addr>`, e.g. `http_server spargio
//! 127.0.0.1:8080`. Prints `ready <addr>` once it listens; `SIGINT` or
//! `SIGTERM` stops it. `BENCH_FILE_DIR` is the directory `/file` is served
//! from (its file `file`). See `spargio_benches::http` for the names.

use spargio_benches::http::ServerKind;
use std::net::SocketAddr;
use std::process::ExitCode;

fn usage() -> ExitCode {
    let names: Vec<&str> = ServerKind::ALL.iter().map(|(n, _)| *n).collect();
    eprintln!("usage: http_server <{}> <addr>", names.join("|"));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, addr] = args.as_slice() else {
        return usage();
    };
    let Some(kind) = ServerKind::from_name(name) else {
        eprintln!("http_server: unknown server {name:?}");
        return usage();
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("http_server: bad address {addr:?}: {e}");
            return usage();
        }
    };
    match kind.run(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_server {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
