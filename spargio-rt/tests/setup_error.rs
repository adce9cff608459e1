//! A clear error when io_uring cannot be set up.

use std::process::Command;

use spargio_rt::Runtime;

#[test]
fn a_ring_of_no_entries_is_refused_as_invalid_input() {
    // Not an io_uring problem, so not reported as one.
    let err = Runtime::builder()
        .shards(2)
        .ring_entries(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains("ring_entries"), "{msg}");
}

#[test]
fn a_thread_name_with_a_nul_is_refused_as_invalid_input() {
    let err = Runtime::builder()
        .shards(1)
        .thread_name("a\0b")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("thread_name"), "{err}");
}

#[test]
fn zero_shards_is_refused() {
    let err = Runtime::builder().shards(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

const CHILD_ENV: &str = "SPARGIO_TEST_SECCOMP_CHILD";

/// Runs in a child process with a seccomp filter that makes `io_uring_setup`
/// fail with EPERM, as container runtimes do.
#[test]
fn refused_io_uring_names_the_causes() {
    if std::env::var_os(CHILD_ENV).is_some() {
        deny_io_uring_setup();
        let err = Runtime::builder().shards(2).build().unwrap_err();
        println!("CHILD-ERROR: {err}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "refused_io_uring_names_the_causes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("CHILD-ERROR"))
        .expect("child printed its error");
    assert!(
        line.contains("/proc/sys/kernel/io_uring_disabled"),
        "{line}"
    );
    assert!(
        line.contains("refused") || line.contains("disabled"),
        "{line}"
    );
}

fn deny_io_uring_setup() {
    const NR_IO_URING_SETUP: u32 = 425;
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: NR_IO_URING_SETUP,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers; the
    // seccomp call reads `prog`, which points at `filter`, both alive here.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0
        );
    }
}

/// A program's `main` under `#[spargio_rt::main]`: a module's `fn main` is
/// expanded as a program's main is.
mod program {
    #[spargio_rt::main(shards = 2)]
    pub async fn main() {
        println!("CHILD-RAN-THE-BODY");
    }
}

const MAIN_CHILD_ENV: &str = "SPARGIO_TEST_MAIN_WITHOUT_URING";

/// A `#[spargio_rt::main]` program whose runtime cannot start says why on
/// stderr and exits with code 1, as a program reports a failure, rather
/// than panicking.
#[test]
fn a_main_without_io_uring_reports_the_error_and_exits_1() {
    if std::env::var_os(MAIN_CHILD_ENV).is_some() {
        deny_io_uring_setup();
        program::main();
        println!("CHILD-RETURNED");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_main_without_io_uring_reports_the_error_and_exits_1",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MAIN_CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout} {stderr}");
    assert!(!stdout.contains("CHILD-RAN-THE-BODY"), "{stdout}");
    assert!(!stdout.contains("CHILD-RETURNED"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: spargio runtime failed: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains("/proc/sys/kernel/io_uring_disabled"),
        "{line}"
    );
}
