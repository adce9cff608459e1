//! The filesystem's native io_uring ops. Each op struct owns everything its
//! SQE points at (path strings, the statx buffer, the fd it works on).

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::{Cqe, Op, OpData};
use crate::io::fd::SharedFd;

/// Turns an op's outcome into the kernel's result.
fn result(res: io::Result<Cqe>) -> io::Result<u32> {
    res.and_then(|c| c.result())
}

/// How an [`OpenAt`] opens: `openat`'s flags and mode, or `openat2`'s
/// `open_how` (which the kernel reads when it prepares the SQE, so it
/// lives in the op, at its final address, until then).
enum How {
    /// `IORING_OP_OPENAT`.
    At { flags: i32, mode: u32 },
    /// `IORING_OP_OPENAT2`.
    At2(types::OpenHow),
}

/// `openat(dir, path, flags, mode)` or `openat2(dir, path, how)`, with
/// `dir` the cwd when `None`.
struct OpenAt {
    /// Kept open until the kernel is done with the op.
    dir: Option<SharedFd>,
    path: CString,
    how: How,
}

impl OpData for OpenAt {
    fn entry(&mut self) -> Entry {
        let dirfd = types::Fd(self.dir.as_ref().map_or(libc::AT_FDCWD, SharedFd::raw));
        match &self.how {
            How::At { flags, mode } => opcode::OpenAt::new(dirfd, self.path.as_ptr())
                .flags(*flags)
                .mode(*mode)
                .build(),
            How::At2(how) => opcode::OpenAt2::new(dirfd, self.path.as_ptr(), how).build(),
        }
    }

    fn orphaned(&mut self, cqe: Cqe) {
        if cqe.res >= 0 {
            // SAFETY: the kernel just opened this fd for us and nobody else
            // has seen it; closing it here is its only use.
            let fd = unsafe { OwnedFd::from_raw_fd(cqe.res) };
            // Through the ring when this runs on a shard (it usually does:
            // the shard reaping the open, or a task dropping its future):
            // a file that flushes on close (FUSE, NFS) must not block it.
            drop(SharedFd::for_file(fd));
        }
    }
}

/// Takes ownership of the fd a successful open returned.
fn owned(res: io::Result<Cqe>) -> io::Result<OwnedFd> {
    let fd = result(res)?;
    // SAFETY: a successful openat/openat2 returns a new fd that only we
    // own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens `path` relative to `dir` (the cwd when `None`) with `openat`;
/// `flags` should include `O_CLOEXEC`.
pub(crate) async fn open(
    dir: Option<SharedFd>,
    path: CString,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let how = How::At { flags, mode };
    let (res, _) = Op::new(OpenAt { dir, path, how }).await;
    owned(res)
}

/// How often [`open2`] tries again when the kernel reports (`EAGAIN`)
/// that a rename or mount raced a `BENEATH`/`IN_ROOT` lookup.
const OPENAT2_RACE_RETRIES: usize = 8;

/// Opens `path` relative to `dir` (the cwd when `None`) with `openat2`;
/// `flags` should include `O_CLOEXEC`, and must be valid for `openat2`
/// (which, unlike `openat`, refuses unknown bits, a mode without
/// `O_CREAT`/`O_TMPFILE`, and `O_PATH` with other flags).
///
/// With `BENEATH` or `IN_ROOT` (and not `CACHED`), `EAGAIN` may mean the
/// kernel saw a rename or mount while resolving `..` and gave up rather
/// than risk a wrong answer; the open is then tried again, a few times.
/// (Under `O_NONBLOCK` it may also be a file lease; the retries are then
/// wasted but harmless, and the last `EAGAIN` is returned.)
pub(crate) async fn open2(
    dir: Option<SharedFd>,
    path: CString,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = types::OpenHow::new()
        .flags(flags as u32 as u64)
        .mode(u64::from(mode))
        .resolve(resolve);
    let retry_races = resolve & (libc::RESOLVE_BENEATH | libc::RESOLVE_IN_ROOT) != 0
        && resolve & libc::RESOLVE_CACHED == 0;
    let mut op = OpenAt {
        dir,
        path,
        how: How::At2(how),
    };
    let mut attempts = 0;
    loop {
        let (res, data) = Op::new(op).await;
        attempts += 1;
        match owned(res) {
            Err(e)
                if retry_races
                    && attempts <= OPENAT2_RACE_RETRIES
                    && e.raw_os_error() == Some(libc::EAGAIN) =>
            {
                op = data;
            }
            other => return other,
        }
    }
}

/// `statx` of a path relative to the cwd (`fd` is `None`) or to an open
/// directory, or, with an empty path and `AT_EMPTY_PATH`, of an open fd.
struct Statx {
    fd: Option<SharedFd>,
    path: CString,
    flags: i32,
    out: Box<libc::statx>,
}

impl OpData for Statx {
    fn entry(&mut self) -> Entry {
        let dirfd = self.fd.as_ref().map_or(libc::AT_FDCWD, SharedFd::raw);
        opcode::Statx::new(
            types::Fd(dirfd),
            self.path.as_ptr(),
            (&mut *self.out as *mut libc::statx).cast(),
        )
        .flags(self.flags)
        .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
        .build()
    }
}

/// Runs one [`Statx`] op and returns what the kernel filled in.
async fn statx(fd: Option<SharedFd>, path: CString, flags: i32) -> io::Result<libc::statx> {
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let out = Box::new(unsafe { std::mem::zeroed() });
    let (res, data) = Op::new(Statx {
        fd,
        path,
        flags,
        out,
    })
    .await;
    result(res)?;
    Ok(*data.out)
}

/// `statx(AT_FDCWD, path, flags)`.
pub(crate) async fn statx_path(path: CString, flags: i32) -> io::Result<libc::statx> {
    statx(None, path, flags).await
}

/// `statx(dir, path, flags)`: `path` looked up relative to the open
/// directory `dir`, which the op keeps open until the kernel is done.
pub(crate) async fn statx_at(dir: &SharedFd, path: CString, flags: i32) -> io::Result<libc::statx> {
    statx(Some(dir.clone()), path, flags).await
}

/// `statx(fd, "", AT_EMPTY_PATH)`.
pub(crate) async fn statx_fd(fd: &SharedFd) -> io::Result<libc::statx> {
    statx(Some(fd.clone()), CString::default(), libc::AT_EMPTY_PATH).await
}

/// The single- and two-path ops, all relative to the cwd.
pub(crate) enum PathOp {
    /// `mkdirat(path, mode)`.
    Mkdir { path: CString, mode: u32 },
    /// `unlinkat(path, flags)` (`AT_REMOVEDIR` for directories).
    Unlink { path: CString, flags: i32 },
    /// `renameat(from, to)`.
    Rename { from: CString, to: CString },
    /// `linkat(from, to)` (not following a symlink `from`, as `link(2)`).
    Link { from: CString, to: CString },
    /// `symlinkat(target, link)`.
    Symlink { target: CString, link: CString },
}

impl OpData for PathOp {
    fn entry(&mut self) -> Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        match self {
            PathOp::Mkdir { path, mode } => {
                opcode::MkDirAt::new(cwd, path.as_ptr()).mode(*mode).build()
            }
            PathOp::Unlink { path, flags } => opcode::UnlinkAt::new(cwd, path.as_ptr())
                .flags(*flags)
                .build(),
            PathOp::Rename { from, to } => {
                opcode::RenameAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
            }
            PathOp::Link { from, to } => {
                opcode::LinkAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
            }
            PathOp::Symlink { target, link } => {
                opcode::SymlinkAt::new(cwd, target.as_ptr(), link.as_ptr()).build()
            }
        }
    }
}

impl PathOp {
    /// Submits the op and waits for its result.
    pub(crate) async fn run(self) -> io::Result<()> {
        let (res, _) = Op::new(self).await;
        result(res).map(drop)
    }
}

/// `ftruncate(fd, len)`.
struct Ftruncate {
    fd: SharedFd,
    len: u64,
}

impl OpData for Ftruncate {
    fn entry(&mut self) -> Entry {
        opcode::Ftruncate::new(self.fd.uring(), self.len).build()
    }
}

/// `ftruncate` through the ring (`IORING_OP_FTRUNCATE`, kernel 6.9+).
pub(crate) async fn ftruncate(fd: &SharedFd, len: u64) -> io::Result<()> {
    let (res, _) = Op::new(Ftruncate {
        fd: fd.clone(),
        len,
    })
    .await;
    result(res).map(drop)
}

/// `fallocate(fd, mode, offset, len)`.
struct Fallocate {
    fd: SharedFd,
    offset: u64,
    len: u64,
    mode: i32,
}

impl OpData for Fallocate {
    fn entry(&mut self) -> Entry {
        opcode::Fallocate::new(self.fd.uring(), self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build()
    }
}

/// `fallocate` through the ring.
pub(crate) async fn fallocate(fd: &SharedFd, offset: u64, len: u64, mode: i32) -> io::Result<()> {
    let (res, _) = Op::new(Fallocate {
        fd: fd.clone(),
        offset,
        len,
        mode,
    })
    .await;
    result(res).map(drop)
}
