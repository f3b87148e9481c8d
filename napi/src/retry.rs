//! The retry policy as `client.js` needs it for `pool.transaction(cb)`, which reruns a whole
//! callback in JS: the effective policy, the backoff before the next attempt, and which
//! errors are worth another attempt. Rust owns all three; `client.js` holds no numbers.

use hyperion_pool::RetryPolicy;
use napi_derive::napi;

/// A retry policy in milliseconds, as `PoolOptions.retry` spells it.
#[napi(object)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub base_delay_ms: u32,
    pub max_delay_ms: u32,
}

impl From<&RetryPolicy> for RetrySettings {
    fn from(p: &RetryPolicy) -> RetrySettings {
        let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        RetrySettings {
            max_attempts: p.max_attempts,
            base_delay_ms: ms(p.base_delay),
            max_delay_ms: ms(p.max_delay),
        }
    }
}

/// The defaults of `PoolOptions.retry` (client.d.ts documents them; test/dts.test.js holds
/// the two together).
#[napi]
pub fn retry_defaults() -> RetrySettings {
    RetrySettings::from(&RetryPolicy::default())
}

/// The ms to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
pub fn backoff_ms(policy: &RetryPolicy, attempt: u32) -> f64 {
    policy.delay(attempt.saturating_sub(1)).as_secs_f64() * 1000.0
}

/// Whether a transaction that failed with `code` is worth running again
/// ([`hyperion_pool::retryable_in_transaction`]).
#[napi]
pub fn retryable_in_transaction(code: String) -> bool {
    hyperion_pool::retryable_in_transaction(&code)
}

/// The largest `poolSize` ([`hyperion_pool::MAX_POOL_SIZE`]), for `client.js`'s argument check.
#[napi]
pub fn max_pool_size() -> u32 {
    u32::try_from(hyperion_pool::MAX_POOL_SIZE).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap_with_jitter_in_the_upper_half() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(150),
        };
        for _ in 0..100 {
            let first = backoff_ms(&p, 1);
            assert!((25.0..=50.0).contains(&first), "{first}");
            let second = backoff_ms(&p, 2);
            assert!((50.0..=100.0).contains(&second), "{second}");
            let capped = backoff_ms(&p, 9);
            assert!((75.0..=150.0).contains(&capped), "{capped}");
        }
    }

    #[test]
    fn the_pool_decides_what_client_js_checks() {
        assert_eq!(max_pool_size() as usize, hyperion_pool::MAX_POOL_SIZE);
        assert!(retryable_in_transaction("40001".into()));
        assert!(!retryable_in_transaction("IN_DOUBT".into()));
    }
}
