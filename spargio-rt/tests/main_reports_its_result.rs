//! `#[spargio_rt::main]` on a program's real `main`, returning
//! `Result<(), Box<dyn Error>>` (not `Send`): the result is reported on
//! shard 0 the way std reports a plain `main`'s (`Error: ..` on stderr,
//! exit code 1).
//!
//! This test has no libtest harness. Run without arguments it is the
//! parent: it runs itself as a child that succeeds and as one that fails,
//! and checks their exit codes and stderr. A failed check panics, which
//! fails the test.

use std::error::Error;
use std::rc::Rc;

use spargio_rt::process::{Command, Stdio};
use spargio_rt::{RuntimeHandle, ShardId};

/// Set in the children's environment: `ok` or `fail`.
const ROLE: &str = "SPARGIO_MAIN_REPORT_ROLE";

#[spargio_rt::main(shards = 2)]
async fn main(handle: RuntimeHandle) -> Result<(), Box<dyn Error>> {
    // `!Send` state in the body is fine: it runs on shard 0.
    let shard = Rc::new(handle.current_shard());
    assert_eq!(*shard, Some(ShardId(0)));
    match std::env::var(ROLE).as_deref() {
        Ok("ok") => Ok(()),
        Ok("fail") => {
            let n: u32 = "not a number".parse()?;
            Err(format!("parsed {n}").into())
        }
        _ => check_children().await,
    }
}

async fn check_children() -> Result<(), Box<dyn Error>> {
    let me = std::env::current_exe()?;
    let run = |role: &str| {
        let mut cmd = Command::new(&me);
        cmd.env(ROLE, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };

    let ok = run("ok").output().await?;
    assert_eq!(ok.status.code(), Some(0), "the succeeding child: {ok:?}");
    assert!(ok.stderr.is_empty(), "the succeeding child wrote {ok:?}");

    let failed = run("fail").output().await?;
    assert_eq!(
        failed.status.code(),
        Some(1),
        "the failing child: {failed:?}"
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(
        stderr.trim_end(),
        "Error: ParseIntError { kind: InvalidDigit }",
        "the failing child reports its error as std's main does"
    );
    println!("main_reports_its_result: both children behaved");
    Ok(())
}
