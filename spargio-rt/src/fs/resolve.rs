//! [`ResolveFlags`]: how the kernel may resolve a path, `openat2(2)`'s
//! `RESOLVE_*` flags.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// Restrictions on how a path is resolved when it is opened, the
/// `RESOLVE_*` flags of `openat2(2)` (Linux 5.6+). Set them with
/// [`OpenOptions::resolve`](super::OpenOptions::resolve); combine them
/// with `|`.
///
/// The kernel enforces them while it walks the path, so nothing that
/// changes the tree meanwhile (a directory renamed, or swapped for a
/// symlink) can get around them: the classic check-then-open race is
/// gone.
///
/// ```
/// use spargio_rt::fs::ResolveFlags;
///
/// let confined = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
/// assert!(confined.contains(ResolveFlags::BENEATH));
/// assert!(!confined.contains(ResolveFlags::NO_SYMLINKS));
/// assert_eq!(confined.bits(), libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS);
/// assert!(ResolveFlags::empty().is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResolveFlags(u64);

impl ResolveFlags {
    /// `RESOLVE_NO_XDEV`: every component must be on the same mount as
    /// the directory the path starts from (`EXDEV` otherwise).
    pub const NO_XDEV: ResolveFlags = ResolveFlags(libc::RESOLVE_NO_XDEV);
    /// `RESOLVE_NO_MAGICLINKS`: refuse "magic links" such as
    /// `/proc/<pid>/fd/<n>` (`ELOOP`).
    pub const NO_MAGICLINKS: ResolveFlags = ResolveFlags(libc::RESOLVE_NO_MAGICLINKS);
    /// `RESOLVE_NO_SYMLINKS`: refuse every symlink on the way, the last
    /// component included (`ELOOP`). Implies `NO_MAGICLINKS`.
    pub const NO_SYMLINKS: ResolveFlags = ResolveFlags(libc::RESOLVE_NO_SYMLINKS);
    /// `RESOLVE_BENEATH`: the path, symlinks included, must stay beneath
    /// the directory it is resolved from. An absolute path or symlink, or
    /// a `..` that climbs above that directory, fails with `EXDEV`.
    pub const BENEATH: ResolveFlags = ResolveFlags(libc::RESOLVE_BENEATH);
    /// `RESOLVE_IN_ROOT`: resolve as if the directory were `/` (a
    /// `chroot` for this one lookup): absolute paths and symlinks, and
    /// `..`, are clamped to it. Cannot be combined with `BENEATH`.
    pub const IN_ROOT: ResolveFlags = ResolveFlags(libc::RESOLVE_IN_ROOT);
    /// `RESOLVE_CACHED`: succeed only if the lookup can be done from the
    /// kernel's caches, else fail with `EAGAIN` (Linux 5.12+).
    pub const CACHED: ResolveFlags = ResolveFlags(libc::RESOLVE_CACHED);

    /// No restriction: the path resolves as with `open(2)`.
    pub const fn empty() -> Self {
        ResolveFlags(0)
    }

    /// Flags from raw `libc::RESOLVE_*` bits, kept as they are (bits the
    /// kernel does not know make the open fail with `EINVAL`).
    pub const fn from_bits_retain(bits: u64) -> Self {
        ResolveFlags(bits)
    }

    /// The raw `RESOLVE_*` bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: ResolveFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: ResolveFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// The flags of both.
    pub const fn union(self, other: ResolveFlags) -> Self {
        ResolveFlags(self.0 | other.0)
    }
}

impl BitOr for ResolveFlags {
    type Output = ResolveFlags;

    fn bitor(self, rhs: ResolveFlags) -> ResolveFlags {
        self.union(rhs)
    }
}

impl BitOrAssign for ResolveFlags {
    fn bitor_assign(&mut self, rhs: ResolveFlags) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for ResolveFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(ResolveFlags, &str); 6] = [
            (ResolveFlags::NO_XDEV, "NO_XDEV"),
            (ResolveFlags::NO_MAGICLINKS, "NO_MAGICLINKS"),
            (ResolveFlags::NO_SYMLINKS, "NO_SYMLINKS"),
            (ResolveFlags::BENEATH, "BENEATH"),
            (ResolveFlags::IN_ROOT, "IN_ROOT"),
            (ResolveFlags::CACHED, "CACHED"),
        ];
        let mut rest = self.0;
        let mut first = true;
        f.write_str("ResolveFlags(")?;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::ResolveFlags;

    #[test]
    fn flags_combine_and_print() {
        let mut f = ResolveFlags::BENEATH;
        f |= ResolveFlags::NO_SYMLINKS;
        assert!(f.contains(ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS));
        assert!(f.intersects(ResolveFlags::NO_SYMLINKS | ResolveFlags::CACHED));
        assert!(!f.contains(ResolveFlags::CACHED));
        assert_eq!(format!("{f:?}"), "ResolveFlags(NO_SYMLINKS | BENEATH)");
        assert_eq!(format!("{:?}", ResolveFlags::empty()), "ResolveFlags()");
        let odd = ResolveFlags::from_bits_retain(0x100) | ResolveFlags::IN_ROOT;
        assert_eq!(format!("{odd:?}"), "ResolveFlags(IN_ROOT | 0x100)");
    }
}
