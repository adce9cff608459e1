//! Filesystem access on io_uring: files, directories and paths.
//!
//! Names and behaviour mirror `std::fs` (and `tokio::fs`), with owned
//! buffers for data ([`File::read_at`] takes a buffer by value and gives it
//! back with the result, see [`crate::io`]). Errors are the kernel's errors
//! as [`std::io::Error`]: a missing file is [`ErrorKind::NotFound`], a
//! forbidden one [`ErrorKind::PermissionDenied`], a path through a regular
//! file [`ErrorKind::NotADirectory`], and so on. A path with an interior NUL
//! byte is an [`ErrorKind::InvalidInput`] error.
//!
//! Every function runs on the current runtime: inside a task, or inside
//! [`Runtime::block_on`](crate::Runtime::block_on). Called anywhere else,
//! it fails with an error instead of panicking.
//!
//! ```
//! use spargio_rt::fs;
//!
//! spargio_rt::run(|_| async {
//!     let dir = std::env::temp_dir().join(format!("spargio-fs-doc-{}", std::process::id()));
//!     fs::create_dir_all(&dir).await?;
//!     let path = dir.join("hello.txt");
//!     fs::write(&path, b"hello, ring").await?;
//!     assert_eq!(fs::read_to_string(&path).await?, "hello, ring");
//!     assert_eq!(fs::metadata(&path).await?.len(), 11);
//!     fs::remove_dir_all(&dir).await
//! })
//! .unwrap()
//! .unwrap();
//! ```
//!
//! ## Native opcodes and the blocking pool
//!
//! Most functions are one or more native io_uring operations, submitted on
//! the ring of the shard that polls them. A few have no io_uring opcode (or
//! are whole-tree walks) and run on the runtime's blocking pool
//! ([`crate::spawn_blocking`]), so they never stall a shard.
//!
//! | Function | How it runs |
//! |---|---|
//! | [`File::open`], [`File::create`], [`File::open_dir`], [`OpenOptions::open`], [`OpenOptions::open_at`] | `IORING_OP_OPENAT` |
//! | [`OpenOptions::open`], [`OpenOptions::open_at`] with [`OpenOptions::resolve`] flags | `IORING_OP_OPENAT2` |
//! | [`File::read_at`], [`File::read_exact_at`], [`File::read_to_end`], [`File::read_to_end_at`], [`AsyncRead`](crate::io::AsyncRead) for [`File`] | `IORING_OP_READ` |
//! | [`File::write_at`], [`File::write_all_at`], [`AsyncWrite`](crate::io::AsyncWrite) for [`File`] | `IORING_OP_WRITE` (`IORING_OP_WRITEV` for vectored writes) |
//! | [`File::sync_all`], [`File::sync_data`] | `IORING_OP_FSYNC` |
//! | [`File::metadata`], [`metadata`], [`symlink_metadata`], [`try_exists`], [`DirEntry::metadata`] | `IORING_OP_STATX` |
//! | [`File::set_len`] | `IORING_OP_FTRUNCATE` (kernel 6.9+); falls back to the blocking pool where the kernel lacks it |
//! | [`File::fallocate`] | `IORING_OP_FALLOCATE` |
//! | [`read`], [`read_to_string`] | `OPENAT` + `STATX` + `READ` |
//! | [`write()`] | `OPENAT` + `WRITE` |
//! | [`copy`] | `OPENAT` + `STATX` + `READ`/`WRITE` loop; an existing destination that is not empty is emptied with `IORING_OP_FTRUNCATE` (on the blocking pool before kernel 6.9); `fchmod` on the blocking pool only if the destination's mode differs from the source's (an existing file, or a new one the umask cut) |
//! | [`create_dir`], [`create_dir_all`], [`DirBuilder::create`] | `IORING_OP_MKDIRAT` (+ `STATX` when a component exists) |
//! | [`remove_file`] | `IORING_OP_UNLINKAT` |
//! | [`remove_dir`] | `IORING_OP_UNLINKAT` with `AT_REMOVEDIR` |
//! | [`rename`] | `IORING_OP_RENAMEAT` |
//! | [`hard_link`] | `IORING_OP_LINKAT` |
//! | [`symlink`] | `IORING_OP_SYMLINKAT` |
//! | [`remove_dir_all`] | blocking pool |
//! | [`set_permissions`], [`File::set_permissions`] | blocking pool |
//! | [`canonicalize`], [`read_link`] | blocking pool |
//! | [`read_dir`], [`ReadDir::next_entry`] | `IORING_OP_OPENAT`, then the blocking pool (entries fetched in batches) |
//! | [`File::seek`], [`File::stream_position`] | `lseek` on the calling thread (no I/O); [`File::seek`] to `SeekFrom::End` on the blocking pool (NFS and FUSE refresh the size first) |
//! | [`File::try_clone`], [`File::into_std`] | `dup` on the calling thread (no I/O) |
//!
//! ## Cancellation
//!
//! Dropping any of these futures is safe. An in-flight op is cancelled and
//! its buffers and fd stay alive until the kernel's completion (for
//! [`OpenOptions::open_at`], the directory's fd too); an `openat` or
//! `openat2` that completes after its future was dropped has its new fd
//! closed. A
//! blocking-pool call that was already running finishes on its own.
//!
//! [`ErrorKind::NotFound`]: std::io::ErrorKind::NotFound
//! [`ErrorKind::PermissionDenied`]: std::io::ErrorKind::PermissionDenied
//! [`ErrorKind::NotADirectory`]: std::io::ErrorKind::NotADirectory
//! [`ErrorKind::InvalidInput`]: std::io::ErrorKind::InvalidInput

mod blocking;
mod dir;
mod file;
mod metadata;
mod open_options;
mod ops;
mod path_ops;
mod read_dir;
mod resolve;

pub use dir::{create_dir, create_dir_all, remove_dir, remove_dir_all, DirBuilder};
pub use file::File;
pub use metadata::{FileType, Metadata};
pub use open_options::OpenOptions;
pub use path_ops::{
    canonicalize, copy, hard_link, metadata, read, read_link, read_to_string, remove_file, rename,
    set_permissions, symlink, symlink_metadata, try_exists, write,
};
pub use read_dir::{read_dir, DirEntry, ReadDir};
pub use resolve::ResolveFlags;
