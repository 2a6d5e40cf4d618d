use tokenvault_crypto::{CryptoError, DataKey, KeyId, KeyRing, MasterKey, SealContext};

const SECRET: &[u8] = b"refresh-token-7f3a9c-SECRET";

fn ring(id: u32) -> KeyRing {
    KeyRing::new(DataKey::generate(KeyId(id)), [])
}

fn ctx<'a>(row: &'a str, field: &'a str) -> SealContext<'a> {
    SealContext::new("grants", row, field)
}

#[test]
fn round_trip() {
    let ring = ring(1);
    let sealed = ring.seal(&ctx("g1", "refresh_token"), SECRET);
    assert_eq!(ring.open(&ctx("g1", "refresh_token"), &sealed).unwrap().as_slice(), SECRET);
    assert_eq!(KeyRing::key_id_of(&sealed).unwrap(), KeyId(1));
}

#[test]
fn each_seal_uses_a_fresh_nonce() {
    let ring = ring(1);
    let a = ring.seal(&ctx("g1", "refresh_token"), SECRET);
    let b = ring.seal(&ctx("g1", "refresh_token"), SECRET);
    assert_ne!(a, b);
}

#[test]
fn every_flipped_bit_fails_closed() {
    let ring = ring(1);
    let sealed = ring.seal(&ctx("g1", "access_token"), SECRET);
    for i in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x01;
        let err = ring.open(&ctx("g1", "access_token"), &tampered).unwrap_err();
        assert!(
            matches!(err, CryptoError::OpenFailed | CryptoError::UnsupportedVersion(_) | CryptoError::UnknownKey(_)),
            "byte {i}: {err:?}"
        );
    }
}

#[test]
fn truncated_value_is_malformed() {
    let ring = ring(1);
    let sealed = ring.seal(&ctx("g1", "access_token"), SECRET);
    assert_eq!(ring.open(&ctx("g1", "access_token"), &sealed[..20]), Err(CryptoError::Malformed));
    assert_eq!(ring.open(&ctx("g1", "access_token"), &[]), Err(CryptoError::Malformed));
}

#[test]
fn ciphertext_moved_to_another_row_fails() {
    let ring = ring(1);
    let sealed = ring.seal(&ctx("g1", "refresh_token"), SECRET);
    assert_eq!(ring.open(&ctx("g2", "refresh_token"), &sealed), Err(CryptoError::OpenFailed));
}

#[test]
fn ciphertext_moved_to_another_field_fails() {
    let ring = ring(1);
    let sealed = ring.seal(&ctx("g1", "refresh_token"), SECRET);
    assert_eq!(ring.open(&ctx("g1", "access_token"), &sealed), Err(CryptoError::OpenFailed));
}

#[test]
fn ciphertext_moved_to_another_table_fails() {
    let ring = ring(1);
    let sealed = ring.seal(&SealContext::new("provider_configs", "x", "client_secret"), SECRET);
    assert_eq!(
        ring.open(&SealContext::new("managed_secrets", "x", "client_secret"), &sealed),
        Err(CryptoError::OpenFailed)
    );
}

#[test]
fn context_parts_cannot_be_shifted_between_fields() {
    // "ab"+"c" and "a"+"bc" must not produce the same associated data.
    let ring = ring(1);
    let sealed = ring.seal(&SealContext::new("t", "ab", "c"), SECRET);
    assert_eq!(ring.open(&SealContext::new("t", "a", "bc"), &sealed), Err(CryptoError::OpenFailed));
}

#[test]
fn unknown_key_id_fails_with_clear_error() {
    let sealed = ring(7).seal(&ctx("g1", "refresh_token"), SECRET);
    assert_eq!(ring(1).open(&ctx("g1", "refresh_token"), &sealed), Err(CryptoError::UnknownKey(KeyId(7))));
    let msg = CryptoError::UnknownKey(KeyId(7)).to_string();
    assert!(msg.contains("data key 7"), "{msg}");
}

#[test]
fn rewriting_the_key_id_header_fails() {
    let k1 = DataKey::generate(KeyId(1));
    let k2 = DataKey::generate(KeyId(2));
    let old = KeyRing::new(k1, []);
    let sealed = old.seal(&ctx("g1", "refresh_token"), SECRET);
    let mut relabelled = sealed.clone();
    relabelled[1..5].copy_from_slice(&2u32.to_be_bytes());
    let ring = KeyRing::new(k2, [DataKey::generate(KeyId(9))]);
    assert_eq!(ring.open(&ctx("g1", "refresh_token"), &relabelled), Err(CryptoError::OpenFailed));
}

#[test]
fn unsupported_version_is_reported() {
    let ring = ring(1);
    let mut sealed = ring.seal(&ctx("g1", "refresh_token"), SECRET);
    sealed[0] = 9;
    assert_eq!(ring.open(&ctx("g1", "refresh_token"), &sealed), Err(CryptoError::UnsupportedVersion(9)));
}

#[test]
fn ring_after_rotation_opens_old_and_seals_new() {
    let master = MasterKey::generate();
    let k1 = DataKey::generate(KeyId(1));
    let wrapped_k1 = master.wrap(&k1);
    let before = KeyRing::new(k1, []);
    let old_sealed = before.seal(&ctx("g1", "refresh_token"), SECRET);

    let k1_again = master.unwrap_key(KeyId(1), &wrapped_k1).unwrap();
    let after = KeyRing::new(DataKey::generate(KeyId(2)), [k1_again]);
    assert_eq!(after.open(&ctx("g1", "refresh_token"), &old_sealed).unwrap().as_slice(), SECRET);
    let resealed = after.seal(&ctx("g1", "refresh_token"), SECRET);
    assert_eq!(KeyRing::key_id_of(&resealed).unwrap(), KeyId(2));
    assert_eq!(after.active_key_id(), KeyId(2));
}

#[test]
fn master_key_wraps_and_rejects_wrong_master() {
    let master = MasterKey::generate();
    let other = MasterKey::generate();
    let key = DataKey::generate(KeyId(3));
    let wrapped = master.wrap(&key);
    assert!(master.unwrap_key(KeyId(3), &wrapped).is_ok());
    assert_eq!(other.unwrap_key(KeyId(3), &wrapped).unwrap_err(), CryptoError::UnwrapFailed(KeyId(3)));
    // A wrapped key relabelled with another id is refused too.
    assert_eq!(master.unwrap_key(KeyId(4), &wrapped).unwrap_err(), CryptoError::UnwrapFailed(KeyId(4)));
    assert_ne!(master.fingerprint(), other.fingerprint());
}

#[test]
fn master_key_base64_round_trip_and_errors_do_not_echo_input() {
    let master = MasterKey::generate();
    let text = master.to_base64();
    let parsed = MasterKey::from_base64(&format!("{}\n", text.as_str())).unwrap();
    assert_eq!(parsed.fingerprint(), master.fingerprint());

    let bad = "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0";
    let err = MasterKey::from_base64(bad).unwrap_err().to_string();
    assert!(!err.contains(bad), "{err}");
    assert!(err.contains("32 bytes"), "{err}");
    let err = MasterKey::from_base64("not base64 !!!").unwrap_err().to_string();
    assert!(err.contains("base64"), "{err}");
}

#[test]
fn debug_output_never_contains_key_bytes() {
    let master = MasterKey::generate();
    let b64 = master.to_base64();
    let shown = format!("{master:?}");
    assert!(!shown.contains(b64.as_str()));
    assert!(shown.contains("fingerprint"));

    let key = DataKey::generate(KeyId(5));
    let ring = KeyRing::new(key, []);
    let shown = format!("{ring:?}");
    assert!(shown.contains("KeyId(5)"));
    assert!(!shown.to_lowercase().contains("material"), "{shown}");
    // Errors never carry plaintext.
    let sealed = ring.seal(&ctx("g", "f"), SECRET);
    let err = ring.open(&ctx("g", "other"), &sealed).unwrap_err();
    assert!(!format!("{err:?} {err}").contains("refresh-token"));
}
