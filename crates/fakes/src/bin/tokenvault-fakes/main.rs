//! `tokenvault-fakes`: runs every provider emulator for demos and out-of-process tests.
//!
//! Prints one JSON line with all URLs (for scripts), then a human-readable summary, and serves
//! until Ctrl-C. Consent defaults to an approval page so a person clicking through sees one.

mod config;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use tokenvault_fakes::{ConsentMode, Fakes, FakesOptions, Provider};

use config::{FileConfig, parse_client_flag};

#[derive(Debug, Parser)]
#[command(name = "tokenvault-fakes", about = "Fake Dialpad, Zoom, Aircall and generic OAuth servers on loopback")]
struct Args {
    /// TOML file with clients, users, variants and ports (see crates/fakes/README.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Register a client: provider:client_id:client_secret:redirect_uri (repeatable).
    #[arg(long = "client", value_name = "SPEC")]
    clients: Vec<String>,
    /// Aircall install URI for a client: client_id=uri (repeatable).
    #[arg(long = "install-uri", value_name = "CLIENT_ID=URI")]
    install_uris: Vec<String>,
    /// First of 10 consecutive ports (hosts in a fixed order, then the control API).
    #[arg(long)]
    base_port: Option<u16>,
    /// Address to listen on.
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Consent behaviour for every provider.
    #[arg(long, value_parser = parse_consent)]
    consent: Option<ConsentMode>,
    /// Write tokenvault provider overrides pointing at these fakes into DIR (for
    /// `tokenvault serve --providers-dir DIR`).
    #[arg(long, value_name = "DIR")]
    write_vault_catalog: Option<PathBuf>,
}

fn parse_consent(s: &str) -> Result<ConsentMode, String> {
    match s {
        "page" => Ok(ConsentMode::Page),
        "auto_approve" => Ok(ConsentMode::AutoApprove),
        "auto_deny" => Ok(ConsentMode::AutoDeny),
        _ => Err("expected page, auto_approve or auto_deny".into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let mut options = FakesOptions::default();
    if let Some(bind) = args.bind.or(file.bind) {
        options.bind = bind;
    }
    options.base_port = args.base_port.or(file.base_port);
    let fakes = Fakes::start_with(options).await?;
    let control = fakes.control();
    if let Some(dir) = &args.write_vault_catalog {
        std::fs::create_dir_all(dir)?;
        for (name, contents) in tokenvault_fakes::vault_catalog_overrides(fakes.urls(), None) {
            std::fs::write(dir.join(name), contents)?;
        }
        eprintln!("wrote tokenvault provider overrides to {}", dir.display());
    }

    let consent = args.consent.or(file.consent).unwrap_or(ConsentMode::Page);
    for provider in Provider::ALL {
        control.set_consent(provider, consent);
    }
    let mut clients = file.clients;
    for flag in &args.clients {
        clients.push(parse_client_flag(flag)?);
    }
    for flag in &args.install_uris {
        let (client_id, uri) =
            flag.split_once('=').ok_or_else(|| anyhow::anyhow!("--install-uri must be client_id=uri"))?;
        for client in clients.iter_mut().filter(|c| c.client_id == client_id) {
            client.install_uri = Some(uri.to_owned());
        }
    }
    let mut registered = Vec::new();
    for client in clients {
        let (provider, registration) = client.into_registration();
        registered.push(format!(
            "{} {} -> {}",
            provider.as_str(),
            registration.client_id,
            registration.redirect_uris.join(", ")
        ));
        control.register_client(provider, registration);
    }
    for user in file.users {
        control.set_user(user.provider, user.user);
    }
    for variant in file.variants {
        control.set_variant(variant);
    }

    let mut line = serde_json::json!(fakes.urls());
    line["control"] = serde_json::json!(fakes.control_url());
    println!("{line}");
    let urls = fakes.urls();
    println!("tokenvault fakes running (consent: {consent:?})");
    println!("  Dialpad production  {}/oauth2/authorize", urls.dialpad_production);
    println!("  Dialpad sandbox     {}/oauth2/authorize", urls.dialpad_sandbox);
    println!(
        "  Zoom                {}/oauth/authorize   API {}  (alt {})",
        urls.zoom_oauth, urls.zoom_api, urls.zoom_api_alt
    );
    println!("  Aircall dashboard   {}/install?client_id=...   API {}", urls.aircall_dashboard, urls.aircall_api);
    println!("  Generic issuer      {}", urls.generic_issuer);
    println!("  Evil host           {}", urls.evil);
    println!("  Control API         {}/_fake/urls", fakes.control_url());
    for client in &registered {
        println!("  client: {client}");
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
