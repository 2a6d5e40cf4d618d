//! Provider-to-vault messages tests deliver themselves: Zoom's signed events and Aircall's
//! token-carrying events.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::random;

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
        }
        // HMAC takes keys of any length; unreachable.
        Err(_) => String::new(),
    }
}

/// Zoom's `x-zm-signature`: `v0=` + hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}")).
pub fn zoom_sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hmac_hex(secret, &message))
}

/// The `endpoint.url_validation` challenge Zoom posts to a webhook endpoint.
pub fn zoom_url_validation_event(plain_token: &str, now_ms: u64) -> Value {
    json!({ "event": "endpoint.url_validation", "payload": { "plainToken": plain_token }, "event_ts": now_ms })
}

/// The answer Zoom expects to a URL validation: hex(HMAC-SHA256(secret, plainToken)).
pub fn zoom_url_validation_response(secret: &str, plain_token: &str) -> Value {
    json!({ "plainToken": plain_token, "encryptedToken": hmac_hex(secret, plain_token.as_bytes()) })
}

/// Zoom's `app_deauthorized` event body (`event_ts` in milliseconds).
pub fn zoom_deauthorization_event(user_id: &str, account_id: &str, client_id: &str, now: u64) -> Value {
    json!({
        "event": "app_deauthorized",
        "event_ts": now * 1000,
        "payload": {
            "account_id": account_id,
            "user_id": user_id,
            "signature": hmac_hex(&random::token(16), user_id.as_bytes()),
            "deauthorization_time": rfc3339(now),
            "client_id": client_id,
        }
    })
}

/// An Aircall webhook payload; the webhook `token` is the only thing tying it to an account.
pub fn aircall_webhook_event(webhook_token: &str, event: &str, now: u64) -> Value {
    let resource = event.split('.').next().unwrap_or(event);
    let id = random::int_id();
    json!({
        "resource": resource,
        "event": event,
        "timestamp": now,
        "token": webhook_token,
        "data": {
            "id": id,
            "direct_link": format!("https://api.aircall.io/v1/{resource}s/{id}"),
            "started_at": now,
            "status": "initial",
            "direction": "inbound",
        }
    })
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` for unix seconds (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_680_047_149), "2023-03-28T23:45:49.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn zoom_signature_format() {
        let sig = zoom_sign("secret", "1700000000", b"{}");
        assert!(sig.starts_with("v0="));
        assert_eq!(sig.len(), 3 + 64);
        assert_ne!(sig, zoom_sign("secret", "1700000000", b"{} "));
    }
}
