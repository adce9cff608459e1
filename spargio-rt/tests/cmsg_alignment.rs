//! Control messages stay correct when byte buffers come back at odd
//! addresses: a test binary of its own, whose global allocator hands every
//! byte-aligned allocation (`Vec<u8>`, `String`) an odd address, as an
//! allocator may (`u8` asks for alignment 1). A control-message buffer
//! read as `cmsghdr` from such memory is a misaligned dereference, which
//! debug builds catch.

use std::alloc::{GlobalAlloc, Layout, System};

use spargio_rt::net::{SendOptions, UdpSocket};
use spargio_rt::Runtime;

/// Byte-aligned allocations one byte past an 8-aligned block; everything
/// else straight from the system allocator.
struct OddBytes;

/// The room taken in front of a byte-aligned allocation.
const SHIFT: usize = 1;

fn shifted(l: Layout) -> Layout {
    Layout::from_size_align(l.size() + 8, 8).expect("a small layout")
}

// SAFETY: every block handed out is `layout.size()` bytes of memory owned
// by the caller until it is given back; byte-aligned blocks are shifted by
// `SHIFT` inside a larger system block, and shifted back on the way out
// with the same larger layout.
unsafe impl GlobalAlloc for OddBytes {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.align() != 1 {
            // SAFETY: passed on as the caller asked.
            return unsafe { System.alloc(l) };
        }
        // SAFETY: a non-zero size (the caller's plus 8).
        let p = unsafe { System.alloc(shifted(l)) };
        if p.is_null() {
            return p;
        }
        // SAFETY: `SHIFT + size` is within the `size + 8` bytes allocated.
        unsafe { p.add(SHIFT) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if l.align() != 1 {
            // SAFETY: allocated by `System` with this layout.
            return unsafe { System.dealloc(p, l) };
        }
        // SAFETY: `p` is `SHIFT` past a system block of `shifted(l)`.
        unsafe { System.dealloc(p.sub(SHIFT), shifted(l)) }
    }
}

#[global_allocator]
static ALLOC: OddBytes = OddBytes;

#[test]
fn the_allocator_really_hands_out_odd_byte_buffers() {
    let v: Vec<u8> = Vec::with_capacity(64);
    assert_eq!(v.as_ptr() as usize % 2, 1);
}

#[test]
fn control_messages_go_out_and_come_back_from_odd_byte_buffers() {
    let (ecn, dst) = spargio_rt::run_with(Runtime::builder().shards(1), |_| async {
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        rx.set_recv_ecn(true).unwrap();
        rx.set_recv_pktinfo(true).unwrap();
        let opts = SendOptions {
            segment_size: None,
            ecn: Some(1),
            src_ip: Some("127.0.0.1".parse().unwrap()),
        };
        let (r, _) = tx
            .send_msg(b"datagram".to_vec(), Some(rx.local_addr().unwrap()), opts)
            .await;
        assert_eq!(r.unwrap(), 8);
        let (r, buf) = rx.recv_msg(Vec::with_capacity(64)).await;
        let meta = r.unwrap();
        assert_eq!(&buf[..meta.len], b"datagram");
        (meta.ecn, meta.dst_ip)
    })
    .unwrap();
    assert_eq!(ecn, Some(1));
    assert_eq!(dst, Some("127.0.0.1".parse().unwrap()));
}
