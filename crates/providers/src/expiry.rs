//! Turning a token response's `expires_in` into an instant, safely.

use crate::definition::ExpiresInStyle;

/// Values above this are read as absolute Unix times where the style allows it (~31.7 years
/// as a duration: no real token lives that long).
const EPOCH_THRESHOLD: i64 = 1_000_000_000;
/// An absolute expiry closer than this is treated as already due.
const DUE_MARGIN_MS: i64 = 60_000;

/// The computed expiry (Unix ms; `None` = never expires) and, when the value was odd, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    pub at_ms: Option<i64>,
    pub note: Option<&'static str>,
}

pub(crate) fn compute(
    style: ExpiresInStyle,
    expires_in: Option<i64>,
    now_ms: i64,
    max_lifetime_seconds: Option<u64>,
    assumed_lifetime_seconds: u64,
    refreshable: bool,
) -> Expiry {
    let cap = |at: i64| match max_lifetime_seconds {
        Some(max) => {
            let limit = now_ms.saturating_add((max as i64).saturating_mul(1000));
            if at > limit {
                (limit, Some("expires_in beyond the provider's maximum lifetime; capped"))
            } else {
                (at, None)
            }
        }
        None => (at, None),
    };
    let Some(value) = expires_in else {
        return match (style, refreshable) {
            (ExpiresInStyle::Absent, _) | (_, false) => Expiry { at_ms: None, note: None },
            (_, true) => Expiry {
                at_ms: Some(now_ms + (assumed_lifetime_seconds as i64) * 1000),
                note: Some("expires_in missing; assumed lifetime applied"),
            },
        };
    };
    if value <= 0 {
        return Expiry { at_ms: Some(now_ms), note: Some("expires_in not positive; token treated as expired") };
    }
    if style == ExpiresInStyle::SecondsOrEpoch && value > EPOCH_THRESHOLD {
        let at = value.saturating_mul(1000);
        if at < now_ms + DUE_MARGIN_MS {
            return Expiry {
                at_ms: Some(now_ms),
                note: Some("expires_in is an epoch in the past; token due for refresh"),
            };
        }
        let (at, capped) = cap(at);
        return Expiry { at_ms: Some(at), note: capped.or(Some("expires_in read as an absolute Unix time")) };
    }
    let (at, note) = cap(now_ms.saturating_add(value.saturating_mul(1000)));
    Expiry { at_ms: Some(at), note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExpiresInStyle::*;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: Option<u64> = Some(86_400);

    /// Quirk 1, seconds mode: `3600` means now + 1 h.
    #[test]
    fn seconds_are_a_duration() {
        assert_eq!(compute(SecondsOrEpoch, Some(3600), NOW, DAY, 3600, true).at_ms, Some(NOW + 3_600_000));
    }

    /// Quirk 1, epoch mode: an absolute time is that instant, not now + epoch seconds.
    #[test]
    fn large_values_are_an_epoch_for_seconds_or_epoch() {
        let epoch = NOW / 1000 + 3600;
        let e = compute(SecondsOrEpoch, Some(epoch), NOW, DAY, 3600, true);
        assert_eq!(e.at_ms, Some(epoch * 1000));
        assert!(e.note.is_some());
    }

    /// Quirk 1: an epoch in the past (the guide's 1680047149) makes the token due now.
    #[test]
    fn past_epoch_is_due_now() {
        assert_eq!(compute(SecondsOrEpoch, Some(1_680_047_149), NOW, DAY, 3600, true).at_ms, Some(NOW));
    }

    /// An absurd value is capped at the provider's maximum lifetime.
    #[test]
    fn absurd_values_are_capped() {
        let e = compute(SecondsOrEpoch, Some(NOW / 1000 + 10 * 365 * 86_400), NOW, DAY, 3600, true);
        assert_eq!(e.at_ms, Some(NOW + 86_400_000));
        let e = compute(Seconds, Some(999_999_999), NOW, DAY, 3600, true);
        assert_eq!(e.at_ms, Some(NOW + 86_400_000));
    }

    /// A plain-seconds provider never reinterprets a large value as an epoch; it is capped.
    #[test]
    fn seconds_style_never_reads_an_epoch() {
        let e = compute(Seconds, Some(1_680_047_149), NOW, Some(3600), 3600, true);
        assert_eq!(e.at_ms, Some(NOW + 3_600_000));
    }

    #[test]
    fn missing_expiry() {
        // Aircall: permanent.
        assert_eq!(compute(Absent, None, NOW, None, 3600, false).at_ms, None);
        // A refreshable token without expires_in never silently lives forever.
        assert_eq!(compute(Seconds, None, NOW, DAY, 1800, true).at_ms, Some(NOW + 1_800_000));
        assert_eq!(compute(Seconds, Some(0), NOW, DAY, 1800, true).at_ms, Some(NOW));
        assert_eq!(compute(Seconds, Some(-5), NOW, DAY, 1800, true).at_ms, Some(NOW));
    }
}
