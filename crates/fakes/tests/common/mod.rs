//! Helpers shared by the HTTP tests: a non-redirecting client and authorization-flow steps.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Client, Response};
use serde_json::Value;
use tokenvault_fakes::{ClientRegistration, Fakes};

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CALLBACK: &str = "http://127.0.0.1:1/callback";

pub fn http() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

pub async fn start() -> Fakes {
    Fakes::start().await.expect("fakes start")
}

pub fn registration(id: &str, secret: &str, redirect: &str, scopes: &[&str]) -> ClientRegistration {
    ClientRegistration {
        client_id: id.to_owned(),
        client_secret: secret.to_owned(),
        redirect_uris: vec![redirect.to_owned()],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        install_uri: None,
    }
}

/// `Authorization: Basic` exactly as RFC 6749 §2.3.1 wants: form-urlencode each part first.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(base).expect("url");
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

pub fn location(response: &Response) -> String {
    response.headers().get("location").expect("a Location header").to_str().expect("ascii location").to_owned()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// GET the authorize URL and return the redirect `Location` (asserting a 302).
pub async fn authorize(url: &str) -> String {
    let response = http().get(url).send().await.expect("authorize request");
    assert_eq!(response.status(), 302, "authorize should redirect: {:?}", response.text().await);
    location(&response)
}

/// GET the authorize URL and return the code from the redirect.
pub async fn code_from(url: &str) -> String {
    let location = authorize(url).await;
    param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

pub async fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}
