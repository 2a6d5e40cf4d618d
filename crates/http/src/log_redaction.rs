//! What of a request's URL may reach the logs. The request span records the path only, never
//! the query string: the OAuth callback's query carries `code` and `state`, and any query may
//! carry a caller's secret. One path carries a credential itself, the browser's connect link
//! `/connect/{token}`, whose session token is replaced by `[redacted]` (for that route and for
//! any unknown path under `/connect/`, e.g. the link with something appended), and so is an
//! approval link's, `/approve/{token}`, and a wallet link's, `/wallet/{token}`.

use std::borrow::Cow;

/// Longest path logged; a longer one is cut (the vault refuses such URIs anyway).
const MAX_LOGGED_PATH: usize = 256;

/// The known `/connect/...` routes whose segments are not secret.
const PUBLIC_CONNECT_ROUTES: [&str; 2] = ["callback", "install"];

/// The known `/wallet/...` routes whose segments are not secret.
const PUBLIC_WALLET_ROUTES: [&str; 3] = ["grants", "delegations", "sign-out"];

pub(crate) fn loggable_path(path: &str) -> Cow<'_, str> {
    // An approval link's token lets its holder decide.
    if path.starts_with("/approve/") {
        return Cow::Borrowed("/approve/[redacted]");
    }
    // A wallet link signs its holder in.
    if let Some(rest) = path.strip_prefix("/wallet/") {
        let first = rest.split('/').next().unwrap_or_default();
        if !PUBLIC_WALLET_ROUTES.contains(&first) {
            return Cow::Borrowed("/wallet/[redacted]");
        }
    }
    if let Some(rest) = path.strip_prefix("/connect/") {
        let first = rest.split('/').next().unwrap_or_default();
        if !PUBLIC_CONNECT_ROUTES.contains(&first) {
            return Cow::Borrowed("/connect/[redacted]");
        }
    }
    if path.len() > MAX_LOGGED_PATH {
        let mut end = MAX_LOGGED_PATH;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        return Cow::Owned(format!("{}...({} bytes)", &path[..end], path.len()));
    }
    Cow::Borrowed(path)
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn the_connect_token_is_redacted_and_other_paths_kept() {
        assert_eq!(loggable_path("/connect/cst_secret-token"), "/connect/[redacted]");
        assert_eq!(loggable_path("/connect/cst_secret-token/more"), "/connect/[redacted]");
        assert_eq!(loggable_path("/connect/"), "/connect/[redacted]");
        assert_eq!(loggable_path("/approve/secret-link-token"), "/approve/[redacted]");
        assert_eq!(loggable_path("/wallet/tvw_secret"), "/wallet/[redacted]");
        assert_eq!(loggable_path("/wallet/tvw_secret/x"), "/wallet/[redacted]");
        assert_eq!(loggable_path("/wallet/grants/grt_1/disconnect"), "/wallet/grants/grt_1/disconnect");
        assert_eq!(loggable_path("/wallet"), "/wallet");
        assert_eq!(loggable_path("/connect/callback/pcf_0123"), "/connect/callback/pcf_0123");
        assert_eq!(loggable_path("/connect/install/pcf_0123"), "/connect/install/pcf_0123");
        assert_eq!(loggable_path("/v1/grants/grt_1"), "/v1/grants/grt_1");
        let long = format!("/v1/{}", "a".repeat(1000));
        let shown = loggable_path(&long);
        assert!(shown.len() < 300 && shown.ends_with("(1004 bytes)"), "{shown}");
    }
}
