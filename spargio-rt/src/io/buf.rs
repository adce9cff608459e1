//! Owned buffers: what an in-flight op holds until the kernel is done.
//!
//! An op takes its buffer by value and gives it back with the result
//! ([`BufResult`]), so the kernel can never write into memory the caller
//! has freed or reused, even if the future is dropped mid-flight.
//!
//! Reads fill a buffer **from its start** (or from the start of a
//! [`Slice`]) up to its capacity, and raise its initialised length to cover
//! what was read. To append, read into `buf.slice(buf.len()..)`.

use std::ops::{Bound, RangeBounds};

/// A buffer result: the op's outcome and the buffer back.
pub type BufResult<T, B> = (std::io::Result<T>, B);

/// A buffer the kernel may read from while an op is in flight.
///
/// # Safety
/// `stable_ptr` must point to at least `bytes_total` bytes, of which the
/// first `bytes_init` are initialised, and must stay valid and unchanged
/// while the value is not touched through `&mut` (moving the value must not
/// move the bytes: they live on the heap or in static memory).
///
/// ```
/// use spargio_rt::io::IoBuf;
/// let v = vec![1u8, 2, 3];
/// assert_eq!(v.bytes_init(), 3);
/// let tail = v.slice(1..);
/// assert_eq!(tail.as_slice(), &[2, 3]);
/// ```
pub unsafe trait IoBuf: Send + 'static {
    /// Start of the buffer's bytes.
    fn stable_ptr(&self) -> *const u8;
    /// How many bytes are initialised (for `Vec<u8>`, its `len`).
    fn bytes_init(&self) -> usize;
    /// How many bytes the buffer can hold (for `Vec<u8>`, its `capacity`).
    fn bytes_total(&self) -> usize;

    /// The initialised bytes.
    fn as_slice(&self) -> &[u8] {
        // SAFETY: the trait's contract: `bytes_init` initialised bytes at
        // `stable_ptr`, borrowed for as long as `self` is.
        unsafe { std::slice::from_raw_parts(self.stable_ptr(), self.bytes_init()) }
    }

    /// A view of part of the buffer that owns it (`range` is within
    /// `bytes_total`).
    ///
    /// # Panics
    /// If the range ends past `bytes_total` or starts after it ends.
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(
            begin <= end && end <= self.bytes_total(),
            "spargio: slice {begin}..{end} out of a buffer of {}",
            self.bytes_total()
        );
        Slice {
            buf: self,
            begin,
            end,
        }
    }
}

/// A buffer the kernel may write into while an op is in flight.
///
/// # Safety
/// As [`IoBuf`], and `stable_mut_ptr` must be valid for writes of
/// `bytes_total` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the buffer's bytes, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Records that the first `n` bytes are initialised; never shrinks it.
    ///
    /// # Safety
    /// The first `n` bytes (`n <= bytes_total`) must have been written.
    unsafe fn set_init(&mut self, n: usize);
}

// SAFETY: a Vec's heap bytes do not move when the Vec moves; len and
// capacity are exactly init and total.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf`; the pointer is valid for `capacity` bytes.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if n > self.len() {
            // SAFETY: the caller wrote the first `n <= capacity` bytes.
            unsafe { self.set_len(n) };
        }
    }
}

/// `IoBuf` for byte containers whose bytes are all initialised and whose
/// length never changes while they are held.
macro_rules! fixed_len_buf {
    ($($t:ty),*) => {$(
        // SAFETY: the bytes live on the heap (`Box<[u8]>`, `Bytes`) or in
        // static memory, do not move with the handle, and are all
        // initialised; `len` is both the initialised and the total size.
        unsafe impl IoBuf for $t {
            fn stable_ptr(&self) -> *const u8 {
                self.as_ptr()
            }
            fn bytes_init(&self) -> usize {
                self.len()
            }
            fn bytes_total(&self) -> usize {
                self.len()
            }
        }
    )*};
}

fixed_len_buf!(Box<[u8]>, &'static [u8], &'static str, bytes::Bytes);

// SAFETY: as above; every byte is writable.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

// SAFETY: `BytesMut`'s storage is on the heap and does not move while we
// hold it without calling its `&mut` growth methods.
unsafe impl IoBuf for bytes::BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as above; valid for writes of `capacity` bytes.
unsafe impl IoBufMut for bytes::BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if n > self.len() {
            // SAFETY: the caller wrote the first `n <= capacity` bytes.
            unsafe { self.set_len(n) };
        }
    }
}

/// A range of an owned buffer, owning the buffer. Ops on a slice read from
/// or write into that range only; [`into_inner`](Self::into_inner) gives
/// the whole buffer back.
///
/// ```
/// use spargio_rt::io::IoBuf;
/// let s = b"hello world".to_vec().slice(6..);
/// assert_eq!(s.as_slice(), b"world");
/// assert_eq!(s.into_inner().len(), 11);
/// ```
#[derive(Debug)]
pub struct Slice<T> {
    buf: T,
    begin: usize,
    end: usize,
}

impl<T> Slice<T> {
    /// Where the slice starts in the buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Where the slice ends in the buffer (exclusive).
    pub fn end(&self) -> usize {
        self.end
    }

    /// The whole buffer.
    pub fn get_ref(&self) -> &T {
        &self.buf
    }

    /// Gives the whole buffer back.
    pub fn into_inner(self) -> T {
        self.buf
    }
}

// SAFETY: a sub-range of a buffer that obeys the contract; `begin <= end
// <= bytes_total` is checked when the slice is made.
unsafe impl<T: IoBuf> IoBuf for Slice<T> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total`, so the offset stays in bounds.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf
            .bytes_init()
            .min(self.end)
            .saturating_sub(self.begin)
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: as above, for writes.
unsafe impl<T: IoBufMut> IoBufMut for Slice<T> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: `begin <= bytes_total`, so the offset stays in bounds.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller wrote `begin..begin + n`; the bytes before
        // `begin` are initialised only if the buffer already said so, so
        // raise the buffer's mark only when the slice starts inside it.
        if self.buf.bytes_init() >= self.begin {
            unsafe { self.buf.set_init(self.begin + n) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_of_spare_capacity_extends_a_vec() {
        let mut v = Vec::with_capacity(8);
        v.extend_from_slice(b"ab");
        let mut s = v.slice(2..);
        assert_eq!(s.bytes_total(), 6);
        assert_eq!(s.bytes_init(), 0);
        // SAFETY: writes 3 of the slice's 6 bytes, then marks them.
        unsafe {
            std::ptr::copy_nonoverlapping(b"cde".as_ptr(), s.stable_mut_ptr(), 3);
            s.set_init(3);
        }
        assert_eq!(s.into_inner(), b"abcde");
    }

    #[test]
    fn a_slice_past_the_initialised_part_does_not_claim_the_gap() {
        let v = Vec::with_capacity(8);
        let mut s = v.slice(4..);
        // SAFETY: pretend-write of 2 bytes at 4..6; bytes 0..4 are not init.
        unsafe {
            std::ptr::write_bytes(s.stable_mut_ptr(), 7, 2);
            s.set_init(2);
        }
        assert_eq!(s.into_inner().len(), 0);
    }

    #[test]
    #[should_panic(expected = "out of a buffer")]
    fn slicing_past_capacity_panics() {
        let _ = vec![0u8; 4].slice(2..9);
    }
}
