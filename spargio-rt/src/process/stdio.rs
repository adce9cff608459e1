//! How a child's stdin, stdout and stderr are set up.

use std::fs::File;
use std::os::fd::OwnedFd;

/// What one of a child's standard streams is connected to.
///
/// ```
/// use spargio_rt::process::{Command, Stdio};
/// let mut cmd = Command::new("true");
/// cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
/// ```
#[derive(Debug)]
pub struct Stdio(pub(crate) std::process::Stdio);

impl Stdio {
    /// The child shares the parent's stream.
    pub fn inherit() -> Self {
        Stdio(std::process::Stdio::inherit())
    }

    /// A new pipe; the parent's end appears on the `Child` as
    /// [`ChildStdin`](super::ChildStdin), [`ChildStdout`](super::ChildStdout)
    /// or [`ChildStderr`](super::ChildStderr).
    pub fn piped() -> Self {
        Stdio(std::process::Stdio::piped())
    }

    /// `/dev/null`: reads see end of input, writes are discarded.
    pub fn null() -> Self {
        Stdio(std::process::Stdio::null())
    }
}

impl From<std::process::Stdio> for Stdio {
    fn from(s: std::process::Stdio) -> Self {
        Stdio(s)
    }
}

impl From<OwnedFd> for Stdio {
    /// The child gets (a duplicate of) this fd.
    fn from(fd: OwnedFd) -> Self {
        Stdio(fd.into())
    }
}

impl From<File> for Stdio {
    /// The child gets (a duplicate of) this file's fd.
    fn from(f: File) -> Self {
        Stdio(f.into())
    }
}
