//! Encoding of an op's `user_data`: a generation and a table slot.
//!
//! ```text
//!   bit 63     62..32          31..0
//!   0          generation      slot
//! ```
//!
//! Bit 63 is always clear, so op tags never collide with the shard's own
//! reserved tags (doorbells, the eventfd read, failed sends, cancel requests
//! ([`UD_IGNORE`]), ring closes of files (`UD_CLOSE` in `shard/ring.rs`)),
//! which all have it set. The generation runs from 1 to 2^31 - 1 and wraps, skipping 0.

/// Tag of SQEs whose CQE carries nothing to act on (cancel requests).
pub(crate) const UD_IGNORE: u64 = u64::MAX - 3;

const GEN_MASK: u32 = 0x7FFF_FFFF;

/// Builds the tag of `slot` at generation `gen`.
pub(crate) fn encode(gen: u32, slot: u32) -> u64 {
    (u64::from(gen & GEN_MASK) << 32) | u64::from(slot)
}

/// Splits an op tag into (generation, slot); `None` for reserved tags.
pub(crate) fn decode(ud: u64) -> Option<(u32, u32)> {
    if ud >> 63 != 0 {
        return None;
    }
    Some(((ud >> 32) as u32, ud as u32))
}

/// The generation after `gen`.
pub(crate) fn next_gen(gen: u32) -> u32 {
    let n = gen.wrapping_add(1) & GEN_MASK;
    if n == 0 {
        1
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_clear_of_reserved_tags() {
        for (g, s) in [(1, 0), (GEN_MASK, u32::MAX), (77, 12345)] {
            let ud = encode(g, s);
            assert_eq!(decode(ud), Some((g, s)));
            assert_ne!(ud, UD_IGNORE);
        }
        assert_eq!(decode(UD_IGNORE), None);
        assert_eq!(decode(u64::MAX), None);
    }

    #[test]
    fn generation_wraps_past_zero() {
        assert_eq!(next_gen(GEN_MASK), 1);
        assert_eq!(next_gen(1), 2);
    }
}
