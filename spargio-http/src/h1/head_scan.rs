//! When a head that arrives in pieces is worth parsing again.
//!
//! Parsing the whole buffer after every read costs O(n²) for a head that
//! comes a byte at a time: a 64 KiB head dripped by a slow (or hostile)
//! peer would be scanned 64 Ki times. [`HeadScan`] looks only at the new
//! bytes for the empty line that ends a head, and asks for a parse when
//! one may have come; otherwise only at points that keep every limit
//! check prompt, so the total work stays linear in the head's size.

use std::ops::RangeInclusive;

/// Tracks one head's bytes as they arrive (see the module docs). Start a
/// new one (or [`reset`](Self::reset)) for each head; reset it too to
/// have what came judged once more whatever the rules say (at the end of
/// the stream, or a timeout).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HeadScan {
    /// How many bytes at the front of the buffer were searched already.
    searched: usize,
    /// The buffer's length at the last parse; 0 before the first.
    parsed: usize,
    /// A line has ended in the bytes searched.
    line_ended: bool,
}

impl HeadScan {
    /// Whether `buf`, the head so far from its first byte, should go to the
    /// parser now. Yes for the first bytes; once an empty line (LF, an
    /// optional CR, LF) may have ended the head; once `buf` reaches `limit`
    /// (the head size bound, so an over-long head is refused at once);
    /// while the first line was still open before these bytes and `buf`
    /// is in the `eager` window of lengths (past its start, and the last
    /// parse at most its end, so the read that crosses the window counts
    /// too: a server's request line, whose target length is checked
    /// before the line is whole, can only break that limit in a window of
    /// a few dozen bytes); and whenever `buf` has doubled since the last
    /// parse, so a malformed head is refused before it is complete.
    pub(crate) fn worth_parsing(
        &mut self,
        buf: &[u8],
        limit: usize,
        eager: Option<RangeInclusive<usize>>,
    ) -> bool {
        let len = buf.len();
        if len == 0 {
            return false;
        }
        let due = if self.parsed == 0 {
            // The first look (often at a whole head, pipelined or read at
            // once): the parser does the searching. Finding the first line
            // end stops at the first LF, so this is cheap.
            self.line_ended = buf.contains(&b'\n');
            true
        } else {
            // An end split over two reads: look back over the last two
            // bytes.
            let from = self.searched.min(len).saturating_sub(2);
            let new = &buf[from..];
            let line_was_open = !self.line_ended;
            if line_was_open {
                self.line_ended = new.contains(&b'\n');
            }
            has_empty_line(new)
                || len >= limit
                || (line_was_open
                    && eager.is_some_and(|w| len > *w.start() && self.parsed <= *w.end()))
                || len >= self.parsed.saturating_mul(2)
        };
        self.searched = len;
        if due {
            self.parsed = len;
        }
        due
    }

    /// Forgets what was searched: the buffer's front changed (a head was
    /// taken off it, or bytes before the head were dropped).
    pub(crate) fn reset(&mut self) {
        *self = HeadScan::default();
    }
}

/// Whether `bytes` holds an empty line's end: LF, then LF or CR LF.
fn has_empty_line(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && matches!(&bytes[i + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `head` to a scan `step` bytes at a time; returns the lengths
    /// at which it asked for a parse.
    fn parses(
        head: &[u8],
        step: usize,
        limit: usize,
        eager: Option<RangeInclusive<usize>>,
    ) -> Vec<usize> {
        let mut scan = HeadScan::default();
        let mut at = Vec::new();
        let mut len = 0;
        while len < head.len() {
            len = (len + step).min(head.len());
            if scan.worth_parsing(&head[..len], limit, eager.clone()) {
                at.push(len);
            }
        }
        at
    }

    fn dripped_head(fields: usize) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..fields {
            head.extend_from_slice(format!("x-field-{i}: some value\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    #[test]
    fn a_dripped_head_is_parsed_a_logarithmic_number_of_times() {
        let head = dripped_head(2000);
        let at = parses(&head, 1, 1 << 20, None);
        // The first byte, each doubling, and the end.
        assert_eq!(*at.last().unwrap(), head.len());
        assert!(at.len() <= 2 + head.len().ilog2() as usize, "{at:?}");
    }

    #[test]
    fn the_end_is_found_when_split_over_reads() {
        for end in [&b"\r\n\r\n"[..], b"\n\n", b"\n\r\n"] {
            let mut head = b"HTTP/1.1 200 OK\r\nx: y".to_vec();
            head.extend_from_slice(end);
            for step in 1..=4 {
                let at = parses(&head, step, 1 << 20, None);
                assert_eq!(at.last(), Some(&head.len()), "{end:?} step {step}");
            }
        }
    }

    #[test]
    fn the_limit_asks_for_a_parse() {
        let head = dripped_head(100);
        let at = parses(&head[..1000], 1, 700, None);
        assert!(at.contains(&700), "{at:?}");
    }

    #[test]
    fn the_first_line_is_parsed_on_every_read_in_the_eager_window() {
        let line = [b"GET /".as_slice(), &[b'a'; 300]].concat();
        let at = parses(&line, 1, 1 << 20, Some(100..=150));
        assert_eq!(
            at[..],
            [
                &[1, 2, 4, 8, 16, 32, 64][..],
                &(101..=151).collect::<Vec<_>>(),
                &[302]
            ]
            .concat()[..]
        );
        // A read that jumps over the window's end still counts.
        let at = parses(&line, 40, 1 << 20, Some(100..=150));
        assert!(at.contains(&160), "{at:?}");
        // Once a line has ended, only the other rules apply.
        let head = dripped_head(10);
        let at = parses(&head, 1, 1 << 20, Some(0..=head.len()));
        assert!(at.len() < 30, "{at:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut scan = HeadScan::default();
        assert!(scan.worth_parsing(b"GET", 1 << 20, None));
        assert!(!scan.worth_parsing(b"GET ", 1 << 20, None));
        scan.reset();
        assert!(scan.worth_parsing(b"PUT ", 1 << 20, None));
    }
}
