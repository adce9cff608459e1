//! Diagnostics the runtime prints to stderr.
//!
//! `eprintln!` panics when the write fails (stderr closed, or a pipe whose
//! reader has gone: `prog 2>&1 | head`), and the runtime prints from
//! places where a panic would leave its bookkeeping half done (a pool's
//! thread count, a shard's loop). [`warn_stderr!`] writes the same line
//! and ignores a failed write.

/// Writes one line to stderr, like `eprintln!`, ignoring write errors.
macro_rules! warn_stderr {
    ($($arg:tt)*) => {
        $crate::warn::write_line(format_args!($($arg)*))
    };
}

pub(crate) use warn_stderr;

/// Writes `args` and a newline to stderr in one call; a failure is
/// ignored.
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!("{args}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_warning_formats_its_arguments() {
        // Nothing to observe on stderr from here; this checks that the
        // macro expands and runs with arguments of several kinds.
        warn_stderr!("spargio: test warning {} {:?}", 1, "two");
    }
}
