//! Order statistics of a sample, in microseconds.

#[derive(Debug, Clone)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p95: f64,
}

impl Summary {
    pub fn of(samples: &[u64]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let i = ((sorted.len() - 1) as f64 * q).round() as usize;
            sorted[i] as f64
        };
        Summary { n: sorted.len(), median: at(0.5), p95: at(0.95) }
    }

    /// A fixed reference value (a documented measurement or a floor), not a
    /// sample taken in this run.
    pub fn anchor(value: f64) -> Summary {
        Summary { n: 0, median: value, p95: value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_of_a_known_sample() {
        let s = Summary::of(&(1..=100).collect::<Vec<_>>());
        assert_eq!((s.n, s.median, s.p95), (100, 51.0, 95.0));
        assert!(Summary::of(&[]).median.is_nan());
    }
}
