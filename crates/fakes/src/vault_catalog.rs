//! Provider definition overrides that point tokenvault at these fakes: what an operator passes
//! to `tokenvault serve --providers-dir DIR` to use them. The vault itself knows nothing of the
//! fakes; this explicit override is the only link.

use crate::FakeUrls;

/// `(file name, TOML contents)` for `dialpad.toml`, `zoom.toml` and `aircall.toml`.
/// `dialpad_client_auth` optionally overrides Dialpad's client authentication (`basic`/`body`).
pub fn vault_catalog_overrides(urls: &FakeUrls, dialpad_client_auth: Option<&str>) -> Vec<(&'static str, String)> {
    let dialpad_env = |base: &str| {
        format!(
            "authorize_url = \"{base}/oauth2/authorize\"\ntoken_url = \"{base}/oauth2/token\"\nrevoke_url = \"{base}/oauth2/deauthorize\"\n\
             identity_url = \"{base}/api/v2/users/me\"\napi_base_url = \"{base}\"\n"
        )
    };
    let mut dialpad = format!(
        "# tokenvault provider override: Dialpad at the local fakes\nid = \"dialpad\"\n[environments.production]\n{}[environments.sandbox]\n{}",
        dialpad_env(&urls.dialpad_production),
        dialpad_env(&urls.dialpad_sandbox)
    );
    if let Some(auth) = dialpad_client_auth {
        dialpad.push_str(&format!("[token]\nclient_auth = \"{auth}\"\n"));
    }
    let alt = urls.zoom_api_alt.trim_start_matches("http://");
    let zoom = format!(
        "# tokenvault provider override: Zoom at the local fakes\nid = \"zoom\"\n[environments.production]\n\
         authorize_url = \"{o}/oauth/authorize\"\ntoken_url = \"{o}/oauth/token\"\nrevoke_url = \"{o}/oauth/revoke\"\n\
         identity_url = \"{a}/v2/users/me\"\napi_base_url = \"{a}\"\nallowed_api_host_suffixes = [\"{alt}\"]\n",
        o = urls.zoom_oauth,
        a = urls.zoom_api
    );
    let aircall = format!(
        "# tokenvault provider override: Aircall at the local fakes\nid = \"aircall\"\n[environments.production]\n\
         authorize_url = \"{d}/oauth/authorize\"\ntoken_url = \"{a}/v1/oauth/token\"\nrevoke_url = \"{a}/v1/integrations/disable\"\n\
         identity_url = \"{a}/v1/integrations/me\"\napi_base_url = \"{a}\"\nwebhooks_url = \"{a}/v1/webhooks\"\n",
        d = urls.aircall_dashboard,
        a = urls.aircall_api
    );
    vec![("dialpad.toml", dialpad), ("zoom.toml", zoom), ("aircall.toml", aircall)]
}
