//! When to refresh a grant next, and how long to back off after a failure.

use std::time::Duration;

use rand::Rng;

const MIN_LEAD: i64 = 60_000;
const MAX_LEAD: i64 = 15 * 60_000;

/// The background refresh time of a grant: a lead before expiry (a fifth of the lifetime, 1 to 15
/// minutes, but never more than two fifths of the lifetime) minus jitter (up to a quarter of the
/// lead) so grants connected together do not refresh together; a token is thus refreshed at
/// most once per half its lifetime, however short it lives. For refresh tokens that die when
/// unused (Zoom), at most half their idle lifetime from now. A grant that cannot be refreshed
/// but expires is scheduled at its expiry, to be marked `needs_reauth` then.
pub(crate) fn next_refresh_at(
    expires_at: Option<i64>,
    refreshable: bool,
    idle_lifetime: Option<Duration>,
    now: i64,
) -> Option<i64> {
    if !refreshable {
        return expires_at;
    }
    let by_expiry = expires_at.map(|at| {
        let lifetime = (at - now).max(0);
        let lead = (lifetime / 5).clamp(MIN_LEAD, MAX_LEAD).min(lifetime * 2 / 5);
        let jitter = rand::thread_rng().gen_range(0..=lead / 4);
        (at - lead - jitter).max(now)
    });
    let by_idle = idle_lifetime.map(|idle| now + (idle.as_millis() as i64) / 2);
    match (by_expiry, by_idle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The refresh margin that applies to a token issued at `issued_at` and expiring at
/// `expires_at`: the configured margin, but at most half the token's lifetime, so a token that
/// lives shorter than the margin is refreshed once per half-lifetime instead of on every call.
pub(crate) fn effective_margin(margin: Duration, issued_at: i64, expires_at: i64) -> i64 {
    (margin.as_millis() as i64).min((expires_at - issued_at).max(0) / 2)
}

/// Exponential backoff with jitter (5 s doubling to 15 min), never sooner than `retry_after`.
pub(crate) fn backoff(failures: i64, retry_after: Option<Duration>) -> Duration {
    let exponent = failures.clamp(0, 10) as u32;
    let base = Duration::from_secs(5).saturating_mul(2u32.saturating_pow(exponent)).min(Duration::from_secs(15 * 60));
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    let delay = base.mul_f64(jitter);
    match retry_after {
        Some(at_least) if at_least > delay => at_least,
        _ => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000_000;

    #[test]
    fn refresh_happens_before_expiry_with_a_bounded_lead() {
        let hour = NOW + 3_600_000;
        for _ in 0..100 {
            let at = next_refresh_at(Some(hour), true, None, NOW).unwrap();
            // Lead 12 min (a fifth of an hour) plus up to a quarter of it in jitter.
            assert!(at <= hour - 12 * 60_000 && at >= hour - 15 * 60_000, "{}", (hour - at) / 1000);
        }
        // A token shorter-lived than the one-minute lead is refreshed past half its life, not at once.
        for _ in 0..100 {
            let soon = NOW + 60_000;
            let at = next_refresh_at(Some(soon), true, None, NOW).unwrap();
            assert!((NOW + 30_000..=NOW + 36_000).contains(&at), "{}", (at - NOW) / 1000);
        }
    }

    #[test]
    fn the_margin_is_at_most_half_the_lifetime() {
        let two_minutes = Duration::from_secs(120);
        assert_eq!(effective_margin(two_minutes, NOW, NOW + 3_600_000), 120_000);
        assert_eq!(effective_margin(two_minutes, NOW, NOW + 60_000), 30_000);
        assert_eq!(effective_margin(two_minutes, NOW, NOW), 0);
    }

    #[test]
    fn idle_refresh_tokens_are_kept_alive() {
        let ninety_days = Duration::from_secs(90 * 86_400);
        assert_eq!(next_refresh_at(None, true, Some(ninety_days), NOW), Some(NOW + 45 * 86_400_000));
        let hour = NOW + 3_600_000;
        assert!(next_refresh_at(Some(hour), true, Some(ninety_days), NOW).unwrap() < hour);
    }

    #[test]
    fn unrefreshable_grants_are_looked_at_when_they_expire_and_permanent_ones_never() {
        assert_eq!(next_refresh_at(Some(NOW + 5), false, None, NOW), Some(NOW + 5));
        assert_eq!(next_refresh_at(None, false, None, NOW), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        assert!(backoff(0, None) <= Duration::from_secs(6));
        assert!(backoff(3, None) >= Duration::from_secs(32));
        assert!(backoff(50, None) <= Duration::from_secs(18 * 60));
        assert_eq!(backoff(0, Some(Duration::from_secs(120))), Duration::from_secs(120));
    }
}
