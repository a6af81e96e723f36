//! `histogram_quantile` as Prometheus computes it (`bucketQuantile` in
//! `promql/quantile.go`), so the embedded source and a Prometheus agree.

/// The `q`-quantile of cumulative buckets `(upper bound, count)`, in any
/// order; `None` without a `+Inf` bucket or without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut buckets = buckets.to_vec();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let last = buckets.last()?;
    if last.0 != f64::INFINITY || buckets.len() < 2 || last.1 <= 0.0 {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    // Counts scraped at slightly different moments may dip; Prometheus
    // makes them monotonic first.
    let mut max = 0.0f64;
    for bucket in &mut buckets {
        max = max.max(bucket.1);
        bucket.1 = max;
    }
    let observations = buckets[buckets.len() - 1].1;
    let mut rank = q * observations;
    let b = buckets
        .iter()
        .position(|bucket| bucket.1 >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    Some(start + (end - start) * (rank / count))
}

#[cfg(test)]
mod tests {
    use super::histogram_quantile;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_within_the_bucket_holding_the_rank() {
        // 10 observations: 4 under 10 ms, 6 between 10 and 20 ms.
        let buckets = [(5.0, 0.0), (10.0, 4.0), (20.0, 10.0), (INF, 10.0)];
        assert_eq!(histogram_quantile(0.5, &buckets), Some(11.666666666666666));
        assert_eq!(histogram_quantile(0.2, &buckets), Some(7.5));
        assert_eq!(histogram_quantile(1.0, &buckets), Some(20.0));
    }

    #[test]
    fn the_inf_bucket_answers_the_largest_finite_bound() {
        let buckets = [(10.0, 1.0), (INF, 4.0)];
        assert_eq!(histogram_quantile(0.99, &buckets), Some(10.0));
    }

    #[test]
    fn no_observations_or_no_inf_bucket_is_no_answer() {
        assert_eq!(histogram_quantile(0.5, &[(10.0, 0.0), (INF, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(10.0, 3.0), (20.0, 4.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[]), None);
    }
}
