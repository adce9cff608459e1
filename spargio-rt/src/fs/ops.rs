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

/// `openat(AT_FDCWD, path, flags, mode)`.
struct OpenAt {
    path: CString,
    flags: i32,
    mode: u32,
}

impl OpData for OpenAt {
    fn entry(&mut self) -> Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn orphaned(&mut self, cqe: Cqe) {
        if cqe.res >= 0 {
            // SAFETY: the kernel just opened this fd for us and nobody else
            // has seen it; closing it here is its only use.
            drop(unsafe { OwnedFd::from_raw_fd(cqe.res) });
        }
    }
}

/// Opens `path`; `flags` should include `O_CLOEXEC`.
pub(crate) async fn open(path: CString, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let (res, _) = Op::new(OpenAt { path, flags, mode }).await;
    let fd = result(res)?;
    // SAFETY: a successful openat returns a new fd that only we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `statx` of a path (relative to the cwd) or, with an empty path and
/// `AT_EMPTY_PATH`, of an open fd.
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

fn zeroed_statx() -> Box<libc::statx> {
    // SAFETY: statx is plain old data; all-zero is a valid value.
    Box::new(unsafe { std::mem::zeroed() })
}

/// `statx(AT_FDCWD, path, flags)`.
pub(crate) async fn statx_path(path: CString, flags: i32) -> io::Result<libc::statx> {
    let (res, data) = Op::new(Statx {
        fd: None,
        path,
        flags,
        out: zeroed_statx(),
    })
    .await;
    result(res)?;
    Ok(*data.out)
}

/// `statx(fd, "", AT_EMPTY_PATH)`.
pub(crate) async fn statx_fd(fd: &SharedFd) -> io::Result<libc::statx> {
    let (res, data) = Op::new(Statx {
        fd: Some(fd.clone()),
        path: CString::default(),
        flags: libc::AT_EMPTY_PATH,
        out: zeroed_statx(),
    })
    .await;
    result(res)?;
    Ok(*data.out)
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
