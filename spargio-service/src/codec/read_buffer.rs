//! [`ReadBuffer`]: a codec connection's input buffer, which grows a read
//! at a time for a large frame and gives the large allocation back once
//! that frame has been taken out of it.

use bytes::BytesMut;

/// The smallest read a codec connection makes (and its first buffer's
/// size).
pub(super) const MIN_READ: usize = 4 * 1024;

/// The most a single read grows the buffer by; a large frame arrives over
/// several reads while the buffer doubles, so a peer that declares a
/// large frame and sends nothing does not get a large allocation.
pub(super) const MAX_READ_RESERVE: usize = 64 * 1024;

/// A buffer whose allocation grew past this is dropped (not reused) once
/// it is empty, so a connection that once carried a large frame does not
/// keep that frame's allocation for the rest of its life.
const KEEP_AT_MOST: usize = MAX_READ_RESERVE;

/// A connection's bytes read and not yet decoded.
///
/// `BytesMut` reuses its whole original allocation when it is the only
/// owner of it and asked for room, which is what keeps a connection of
/// small frames allocation-free; it would also keep a 16 MiB allocation
/// for ever after one 16 MiB frame. This buffer remembers that it grew
/// past [`KEEP_AT_MOST`] and starts over from an empty buffer the next
/// time it is empty and asked for room.
///
/// A frame taken out of it (a frozen `split_to`) shares the allocation it
/// was read into: holding it keeps that whole allocation alive, not just
/// its own bytes, for as long as the service holds it (a 16-byte frame
/// kept from a read buffer that once held a 16 MiB frame keeps 16 MiB).
/// The buffer itself starts over from a new allocation meanwhile.
#[derive(Debug, Default)]
pub(super) struct ReadBuffer {
    /// The bytes; the decoder takes whole frames off their front.
    pub(super) bytes: BytesMut,
    /// The allocation grew past [`KEEP_AT_MOST`] and has not been dropped
    /// since.
    oversized: bool,
    /// The bytes are out for a read (taken by
    /// [`take_for_read`](Self::take_for_read), not yet put back) and held
    /// part of a request: if the read is dropped unfinished (an idle
    /// timeout), that part is gone with it, and the client
    /// may still be sending the rest.
    lent_partial: bool,
}

impl ReadBuffer {
    /// Takes the bytes out for a read, with room for at least `needed`
    /// more (clamped to [`MIN_READ`]..=[`MAX_READ_RESERVE`] per read).
    /// Give them back with [`put_back`](Self::put_back).
    pub(super) fn take_for_read(&mut self, needed: usize) -> BytesMut {
        if self.oversized && self.bytes.is_empty() {
            self.bytes = BytesMut::new();
            self.oversized = false;
        }
        self.bytes.reserve(needed.clamp(MIN_READ, MAX_READ_RESERVE));
        if self.bytes.capacity() > KEEP_AT_MOST {
            self.oversized = true;
        }
        self.lent_partial = !self.bytes.is_empty();
        std::mem::take(&mut self.bytes)
    }

    /// Puts back the bytes [`take_for_read`](Self::take_for_read) took,
    /// with what the read appended.
    pub(super) fn put_back(&mut self, bytes: BytesMut) {
        self.bytes = bytes;
        self.lent_partial = false;
    }

    /// Whether part of a request was read and is not here to be decoded:
    /// bytes buffered, or lent to a read that was dropped before it gave
    /// them back (see [`take_for_read`](Self::take_for_read)).
    pub(super) fn holds_partial(&self) -> bool {
        !self.bytes.is_empty() || self.lent_partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    /// Fills `buf` as a read of `len` more bytes would, a read at a time.
    fn receive(buf: &mut ReadBuffer, len: usize) {
        let target = buf.bytes.len() + len;
        while buf.bytes.len() < target {
            let mut bytes = buf.take_for_read(target - buf.bytes.len());
            let n = bytes.spare_capacity_mut().len().min(target - bytes.len());
            bytes.put_bytes(7, n);
            buf.put_back(bytes);
        }
    }

    #[test]
    fn a_large_frame_taken_out_does_not_leave_its_allocation_behind() {
        let mut buf = ReadBuffer::default();
        receive(&mut buf, 4 << 20);
        let frame = buf.bytes.split().freeze();
        drop(frame);
        let next = buf.take_for_read(16);
        assert!(
            next.capacity() <= KEEP_AT_MOST,
            "kept {} bytes after the large frame",
            next.capacity()
        );
    }

    #[test]
    fn a_large_frame_still_held_by_the_service_is_not_copied_or_kept() {
        let mut buf = ReadBuffer::default();
        receive(&mut buf, 1 << 20);
        let frame = buf.bytes.split().freeze();
        let next = buf.take_for_read(16);
        assert!(next.capacity() <= KEEP_AT_MOST);
        assert_eq!(frame.len(), 1 << 20);
    }

    #[test]
    fn small_frames_keep_reusing_one_allocation() {
        let mut buf = ReadBuffer::default();
        receive(&mut buf, 100);
        let first = buf.bytes.as_ptr();
        for _ in 0..100 {
            drop(buf.bytes.split());
            let bytes = buf.take_for_read(16);
            assert_eq!(bytes.as_ptr(), first, "a small frame reallocated");
            buf.put_back(bytes);
            receive(&mut buf, 100);
        }
    }

    #[test]
    fn leftover_bytes_of_the_next_frame_are_kept_through_the_shrink() {
        let mut buf = ReadBuffer::default();
        receive(&mut buf, 1 << 20);
        buf.bytes.put_slice(b"next");
        let frame = buf.bytes.split_to(1 << 20);
        drop(frame);
        let bytes = buf.take_for_read(16);
        assert_eq!(&bytes[..], b"next");
        buf.put_back(bytes);
        drop(buf.bytes.split());
        assert!(buf.take_for_read(16).capacity() <= KEEP_AT_MOST);
    }
}
