//! Nearest-rank quantiles of sorted latency samples, as every latency
//! bench here reports them.

/// The `q` quantile (0 < `q` ≤ 1) of `sorted` by nearest rank: the
/// smallest sample with at least `q` of all samples at or below it; `None`
/// when there are no samples.
///
/// ```
/// use spargio_benches::quantile::nearest_rank;
/// let v: Vec<u64> = (1..=100).collect();
/// assert_eq!(nearest_rank(&v, 0.99), Some(99));
/// assert_eq!(nearest_rank::<u64>(&[], 0.5), None);
/// ```
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 0.50), Some(50));
        assert_eq!(nearest_rank(&v, 0.99), Some(99));
        assert_eq!(nearest_rank(&v, 0.999), Some(100));
        assert_eq!(nearest_rank(&[7u32], 0.0), Some(7));
        assert_eq!(nearest_rank::<u64>(&[], 0.99), None);
    }
}
