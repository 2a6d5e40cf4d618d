//! The CLI's profiles: which vault to call and with which credential, so commands need neither on
//! every line. They live in one TOML file that only its owner can read (written with mode 0600,
//! replaced atomically); a credential read from it is held as a secret and never printed.
//!
//! A command picks its vault in this order: `--url` (credential from `TOKENVAULT_ADMIN_TOKEN` /
//! `TOKENVAULT_API_KEY`), else the profile `--profile` / `TOKENVAULT_PROFILE` names, else the
//! profile named `default` if the file has one.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::cli::RemoteArgs;

pub const DEFAULT_PROFILE: &str = "default";
pub const ADMIN_TOKEN_VAR: &str = "TOKENVAULT_ADMIN_TOKEN";
pub const API_KEY_VAR: &str = "TOKENVAULT_API_KEY";

/// The file: `[profiles.NAME]` tables.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One vault and the credentials to call it with (an admin token, an API key, or both: each
/// command uses the one it needs).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub url: String,
    #[serde(default)]
    pub admin_token: Option<SecretString>,
    #[serde(default)]
    pub api_key: Option<SecretString>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile").field("url", &self.url).field("credentials", &self.credential_kinds()).finish()
    }
}

impl Profile {
    /// What the profile holds, for humans: `admin token adm_…` / `api key key_…` (ids, which the
    /// API lists anyway; never the secret part).
    pub fn credential_kinds(&self) -> Vec<String> {
        let mut kinds = Vec::new();
        if let Some(token) = &self.admin_token {
            kinds.push(describe(token.expose_secret(), "tva_", "adm", "admin token"));
        }
        if let Some(key) = &self.api_key {
            kinds.push(describe(key.expose_secret(), "tvk_", "key", "api key"));
        }
        kinds
    }
}

/// `tva_<32 hex>_<secret>` → `admin token adm_<32 hex>`; anything else → just the kind.
fn describe(credential: &str, prefix: &str, id_prefix: &str, kind: &str) -> String {
    let hex = credential.strip_prefix(prefix).and_then(|rest| rest.get(..32)).filter(|hex| {
        hex.bytes().all(|b| b.is_ascii_hexdigit()) && credential.as_bytes().get(prefix.len() + 32) == Some(&b'_')
    });
    match hex {
        Some(hex) => format!("{kind} {id_prefix}_{hex}"),
        None => kind.to_owned(),
    }
}

/// Where to send requests, with which credentials.
pub struct Target {
    pub url: url::Url,
    pub admin_token: Option<SecretString>,
    pub api_key: Option<SecretString>,
    /// `profile NAME` or `--url`, for messages.
    pub source: String,
}

impl ProfileFile {
    /// The file at `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> anyhow::Result<ProfileFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileFile::default()),
            Err(err) => return Err(err).with_context(|| format!("cannot read the CLI config {}", path.display())),
        };
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!("warning: {} can be read by other users; run `chmod 600 {0}`", path.display());
        }
        // toml's messages quote the offending line, which may hold a credential: report the
        // position and the start of the message only.
        toml::from_str(&text).map_err(|err| {
            let line = err.span().map(|s| format!(" on line {}", text[..s.start].matches('\n').count() + 1));
            let first_line = err.message().lines().next().unwrap_or_default();
            let what = first_line.split('`').next().unwrap_or_default().trim().trim_end_matches(':');
            anyhow::anyhow!("the CLI config {} is invalid{}: {what}", path.display(), line.unwrap_or_default())
        })
    }

    /// Writes the file with mode 0600: a new file beside it, then renamed over it, so a reader
    /// never sees half a file and the credentials are never readable by others, even briefly.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Out<'a> {
            profiles: BTreeMap<&'a str, OutProfile<'a>>,
        }
        #[derive(Serialize)]
        struct OutProfile<'a> {
            url: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            admin_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            api_key: Option<&'a str>,
        }
        let out = Out {
            profiles: self
                .profiles
                .iter()
                .map(|(name, p)| {
                    let profile = OutProfile {
                        url: &p.url,
                        admin_token: p.admin_token.as_ref().map(|s| s.expose_secret()),
                        api_key: p.api_key.as_ref().map(|s| s.expose_secret()),
                    };
                    (name.as_str(), profile)
                })
                .collect(),
        };
        let text = format!(
            "# tokenvault CLI profiles, written by `tokenvault login`. Holds credentials: keep it mode 0600.\n{}",
            toml::to_string(&out).context("cannot write the profiles")?
        );
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file_name = path.file_name().context("the CLI config path has no file name")?.to_string_lossy();
        let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(err) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(err).with_context(|| format!("cannot write the CLI config {}", path.display()));
        }
        Ok(())
    }
}

/// `--cli-config`, else `$XDG_CONFIG_HOME/tokenvault/cli.toml`, else `~/.config/tokenvault/cli.toml`.
pub fn config_path(remote: &RemoteArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &remote.cli_config {
        return Ok(path.clone());
    }
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = match non_empty("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        Some(dir) => dir,
        None => {
            non_empty("HOME").context("neither XDG_CONFIG_HOME nor HOME is set: pass --cli-config")?.join(".config")
        }
    };
    Ok(base.join("tokenvault").join("cli.toml"))
}

/// Profile names are plain words, so they need no quoting in the file or the shell.
pub fn validate_profile_name(name: &str) -> anyhow::Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !plain {
        bail!("a profile name is 1-64 letters, digits, `-`, `_` or `.`");
    }
    Ok(())
}

/// A vault URL: http or https, no credentials, query or fragment in it.
pub fn parse_vault_url(text: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(text.trim()).map_err(|_| anyhow::anyhow!("the vault URL is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("the vault URL must be an http:// or https:// URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("the vault URL must not contain credentials: use --admin-token or --api-key");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("the vault URL must not have a query or fragment");
    }
    Ok(url)
}

/// A credential must fit an `Authorization` header. The message never contains it.
pub fn validate_credential(what: &str, value: &str) -> anyhow::Result<SecretString> {
    let value = value.trim();
    if value.is_empty() || value.len() > 4096 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("the {what} is empty or contains characters a credential cannot have");
    }
    Ok(SecretString::from(value.to_owned()))
}

fn env_credential(name: &str, what: &str) -> anyhow::Result<Option<SecretString>> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            validate_credential(what, &value).map(Some).with_context(|| format!("in {name}"))
        }
        _ => Ok(None),
    }
}

/// The vault this invocation talks to, or `None` when nothing names one.
pub fn resolve_target(remote: &RemoteArgs) -> anyhow::Result<Option<Target>> {
    if let Some(url) = &remote.url {
        if remote.profile.is_some() {
            bail!("give either --url (TOKENVAULT_URL) or --profile (TOKENVAULT_PROFILE), not both");
        }
        return Ok(Some(Target {
            url: parse_vault_url(url)?,
            admin_token: env_credential(ADMIN_TOKEN_VAR, "admin token")?,
            api_key: env_credential(API_KEY_VAR, "API key")?,
            source: "--url".into(),
        }));
    }
    let path = config_path(remote)?;
    let file = ProfileFile::load(&path)?;
    let name = remote.profile.as_deref().unwrap_or(DEFAULT_PROFILE);
    let Some(profile) = file.profiles.get(name) else {
        if remote.profile.is_some() {
            bail!(
                "no profile `{name}` in {}: run `tokenvault login --profile {name} --url URL --admin-token TOKEN|--api-key KEY`",
                path.display()
            );
        }
        return Ok(None);
    };
    Ok(Some(Target {
        url: parse_vault_url(&profile.url).with_context(|| format!("profile `{name}` in {}", path.display()))?,
        admin_token: profile.admin_token.clone(),
        api_key: profile.api_key.clone(),
        source: format!("profile `{name}`"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_described_by_id_only() {
        let token = format!("tva_{}_{}", "0192f7c4e6a87b3c9d1e2f3a4b5c6d7e", "s".repeat(43));
        let profile = Profile {
            url: "http://127.0.0.1:8080".into(),
            admin_token: Some(token.clone().into()),
            api_key: Some("an-odd-key".to_owned().into()),
        };
        assert_eq!(profile.credential_kinds(), ["admin token adm_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e", "api key"]);
        let debug = format!("{profile:?}");
        assert!(!debug.contains(&token) && !debug.contains("an-odd-key"), "{debug}");
    }

    #[test]
    fn the_file_is_written_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("cli.toml");
        let mut file = ProfileFile::default();
        file.profiles.insert(
            "default".into(),
            Profile { url: "http://127.0.0.1:1".into(), admin_token: Some("tok".to_owned().into()), api_key: None },
        );
        file.save(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let read = ProfileFile::load(&path).unwrap();
        assert_eq!(read.profiles["default"].admin_token.as_ref().unwrap().expose_secret(), "tok");
        assert!(read.profiles["default"].api_key.is_none());
        assert!(ProfileFile::load(&dir.path().join("missing.toml")).unwrap().profiles.is_empty());
    }

    #[test]
    fn a_broken_file_is_reported_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cli.toml");
        for text in [
            "[profiles.x]\nurl = \"http://h\"\napi_key = 12345678987654321\n",
            "[profiles.x]\nurl = \"http://h\"\napi_kye = \"tvk_super-secret-value\"\n",
            "[profiles.x]\nurl = \"http://h\"\napi_key = tvk_super-secret-value\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", ProfileFile::load(&path).err().unwrap());
            assert!(!err.contains("super-secret") && !err.contains("12345678987654321"), "{err}");
            assert!(err.contains("line 3"), "{err}");
        }
    }

    #[test]
    fn vault_urls_and_names_are_checked() {
        assert!(parse_vault_url("https://vault.example.com/base/").is_ok());
        for bad in ["ftp://x", "https://user:pw@x", "https://x/?a=b", "not a url"] {
            assert!(parse_vault_url(bad).is_err(), "{bad}");
        }
        assert!(validate_profile_name("prod-eu.1").is_ok());
        assert!(validate_profile_name("a b").is_err() && validate_profile_name("").is_err());
        let err = validate_credential("API key", "tvk_abc def").err().unwrap().to_string();
        assert!(!err.contains("abc"), "{err}");
    }
}
