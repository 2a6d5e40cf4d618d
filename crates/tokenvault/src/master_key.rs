//! Where the master key comes from: `TOKENVAULT_MASTER_KEY`, a key file named in the settings,
//! or, for the embedded SQLite default only, `master.key` in the data directory, generated on
//! first start. A key file that group or others can access is refused unless the operator
//! says otherwise: whoever can read it can open every stored credential.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use tokenvault_service::MasterKey;

use crate::Settings;

pub const ENV_VAR: &str = "TOKENVAULT_MASTER_KEY";
const KEY_FILE_NAME: &str = "master.key";

pub fn resolve(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::env::var(ENV_VAR) {
        return MasterKey::from_base64(&text).with_context(|| format!("{ENV_VAR} is not usable"));
    }
    if let Some(path) = &settings.master_key_file {
        return read_key_file(path, settings.allow_insecure_master_key_file);
    }
    if !settings.uses_embedded_database() {
        bail!(
            "PostgreSQL needs a master key: set {ENV_VAR} (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) \
             or --master-key-file, the same on every vault instance"
        );
    }
    let path = settings.data_dir.join(KEY_FILE_NAME);
    if path.exists() {
        return read_key_file(&path, settings.allow_insecure_master_key_file);
    }
    if settings.embedded_database_path().exists() {
        bail!(
            "the database {} exists but its master key file {} is missing; without it the stored credentials cannot be opened",
            settings.embedded_database_path().display(),
            path.display()
        );
    }
    generate_key_file(&path)
}

fn read_key_file(path: &Path, allow_insecure: bool) -> anyhow::Result<MasterKey> {
    check_permissions(path, allow_insecure)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key file {} is not usable", path.display()))
}

/// Refuses a key file whose mode gives group or others any access (checked before it is read,
/// following symlinks, as reading does), unless `allow_insecure`, which only logs a warning.
fn check_permissions(path: &Path, allow_insecure: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read master key file {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if allow_insecure {
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{mode:04o}"),
            "the master key file is accessible by group or others; used anyway (--allow-insecure-master-key-file)"
        );
        return Ok(());
    }
    bail!(
        "master key file {} has mode {mode:04o}: group or others can access it, and whoever reads it can open \
         every stored credential. Fix it with `chmod 600 {}`, or pass --allow-insecure-master-key-file \
         (TOKENVAULT_ALLOW_INSECURE_MASTER_KEY_FILE=true) if something else protects the file",
        path.display(),
        path.display()
    )
}

fn generate_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = MasterKey::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create master key file {}", path.display()))?;
    file.write_all(key.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        fingerprint = %key.fingerprint(),
        "generated a new master key file: back it up; losing it loses every stored credential"
    );
    Ok(key)
}
