use super::*;
use crate::config::sasl::SaslConfig;
use bytes::BytesMut;
use kafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::Encodable;
use scram::{ScramCredential, ScramMechanism};
use std::collections::BTreeMap;

fn config(reauth_ms: i64) -> Arc<SaslConfig> {
    let mut users = BTreeMap::new();
    users.insert("alice".to_string(), "alice-secret".to_string());
    Arc::new(SaslConfig {
        listener: "SASL_PLAINTEXT".into(),
        mechanisms: vec![
            Mechanism::Plain,
            Mechanism::Scram(ScramMechanism::Sha512),
            Mechanism::OAuthBearer,
        ],
        plain_users: users,
        oauth: oauth::UnsecuredValidator::default(),
        reauth_ms,
        max_receive_size: 524_288,
        failure_delay_ms: 100,
    })
}

/// SCRAM credentials set in the test, and a fixed server nonce.
#[derive(Debug, Default)]
struct Fixed(BTreeMap<(String, ScramMechanism), ScramCredential>);

impl ScramSource for Fixed {
    fn credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
        self.0.get(&(user.to_string(), m)).cloned()
    }
    fn nonce(&self) -> String {
        "SERVERNONCE".into()
    }
}

fn session(config: Arc<SaslConfig>) -> Session {
    let mut creds = BTreeMap::new();
    let cred = ScramCredential::derive(ScramMechanism::Sha512, b"carol-secret", b"salty", 4096);
    creds.insert(("carol".to_string(), ScramMechanism::Sha512), cred);
    Session::new(config, Arc::new(Fixed(creds)))
}

fn frame<R: Encodable>(api: ApiKey, version: i16, req: &R) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn handshake(mechanism: &str) -> Bytes {
    let req =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    frame(ApiKey::SaslHandshake, 1, &req)
}

fn authenticate(token: &[u8]) -> Bytes {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
    frame(ApiKey::SaslAuthenticate, 2, &req)
}

fn metadata() -> Bytes {
    frame(ApiKey::Metadata, 12, &MetadataRequest::default())
}

/// The SaslAuthenticate response in an answer frame.
fn auth_response(answer: &Bytes) -> SaslAuthenticateResponse {
    let mut b = answer.slice(4..);
    ResponseHeader::decode(&mut b, 1).unwrap();
    SaslAuthenticateResponse::decode(&mut b, 2).unwrap()
}

fn answered(g: Gate) -> Bytes {
    match g {
        Gate::Answer(b) => b,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn plain_login_then_requests_pass() {
    let mut s = session(config(0));
    let versions = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(matches!(s.check(&versions, 0), Gate::Pass));
    assert!(matches!(
        s.check(&metadata(), 0),
        Gate::Fail { answer: None, .. }
    ));
    let mut s = session(config(0));
    answered(s.check(&handshake("PLAIN"), 0));
    let ok = auth_response(&answered(
        s.check(&authenticate(b"\0alice\0alice-secret"), 0),
    ));
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 0));
    assert_eq!(s.principal(), Some("alice"));
    assert!(matches!(s.check(&metadata(), i64::MAX), Gate::Pass));
    assert_eq!(s.max_frame(100 << 20), 100 << 20);
}

#[test]
fn wrong_credentials_are_answered_then_closed() {
    for token in [
        &b"\0alice\0wrong"[..],
        b"\0bob\0alice-secret",
        b"\0alice\0",
        b"alice-secret",
        b"mallory\0alice\0alice-secret",
    ] {
        let mut s = session(config(0));
        assert_eq!(s.max_frame(100 << 20), 524_288);
        answered(s.check(&handshake("PLAIN"), 0));
        let Gate::Fail {
            answer: Some(a),
            reason,
        } = s.check(&authenticate(token), 0)
        else {
            panic!("accepted {token:?}")
        };
        assert_eq!(auth_response(&a).error_code, SASL_AUTHENTICATION_FAILED);
        assert!(
            !reason.contains("secret") && !reason.contains("wrong"),
            "{reason}"
        );
        assert_eq!(s.principal(), None);
    }
}

#[test]
fn a_mechanism_not_enabled_is_refused() {
    let mut s = session(config(0));
    let Gate::Fail {
        answer: Some(a), ..
    } = s.check(&handshake("SCRAM-SHA-256"), 0)
    else {
        panic!("accepted")
    };
    let mut b = a.slice(4..);
    ResponseHeader::decode(&mut b, 0).unwrap();
    let resp = SaslHandshakeResponse::decode(&mut b, 1).unwrap();
    assert_eq!(resp.error_code, UNSUPPORTED_SASL_MECHANISM);
    let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-512", "OAUTHBEARER"]);
}

#[test]
fn sessions_expire_unless_renewed_as_the_same_user() {
    let mut s = session(config(1_000));
    answered(s.check(&handshake("PLAIN"), 0));
    let ok = auth_response(&answered(
        s.check(&authenticate(b"\0alice\0alice-secret"), 0),
    ));
    assert_eq!(ok.session_lifetime_ms, 1_000);
    assert!(matches!(s.check(&metadata(), 1_000), Gate::Pass));
    // Re-authentication before expiry extends the session.
    answered(s.check(&handshake("PLAIN"), 900));
    answered(s.check(&authenticate(b"alice\0alice\0alice-secret"), 900));
    assert!(matches!(s.check(&metadata(), 1_800), Gate::Pass));
    assert!(matches!(s.check(&metadata(), 1_901), Gate::Fail { .. }));
    // Another user cannot take over the connection.
    let mut users = (*config(1_000)).clone();
    users.plain_users.insert("bob".into(), "bob-secret".into());
    let mut s = session(Arc::new(users));
    answered(s.check(&handshake("PLAIN"), 0));
    answered(s.check(&authenticate(b"\0alice\0alice-secret"), 0));
    answered(s.check(&handshake("PLAIN"), 10));
    assert!(matches!(
        s.check(&authenticate(b"\0bob\0bob-secret"), 10),
        Gate::Fail {
            answer: Some(_),
            ..
        }
    ));
}

#[test]
fn garbage_and_v0_handshakes_close() {
    let mut s = session(config(0));
    assert!(matches!(
        s.check(&Bytes::from_static(b"\x00"), 0),
        Gate::Fail { .. }
    ));
    let v0 = frame(
        ApiKey::SaslHandshake,
        0,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    );
    assert!(matches!(s.check(&v0, 0), Gate::Fail { .. }));
    let mut s = session(config(0));
    let mut bad = handshake("PLAIN").to_vec();
    bad.truncate(bad.len() - 3);
    assert!(matches!(s.check(&Bytes::from(bad), 0), Gate::Fail { .. }));
}

/// A SCRAM-SHA-512 client's final message for `password`, and the server signature it expects.
fn scram_client_final(
    password: &[u8],
    client_first_bare: &str,
    server_first: &str,
) -> (String, String) {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use ring::{digest, hmac, pbkdf2};
    let attrs: BTreeMap<&str, &str> = server_first
        .split(',')
        .map(|kv| kv.split_at(2))
        .map(|(k, v)| (&k[..1], v))
        .collect();
    let salt = B64.decode(attrs["s"]).unwrap();
    let iterations: u32 = attrs["i"].parse().unwrap();
    let mut salted = [0u8; 64];
    let rounds = std::num::NonZeroU32::new(iterations).unwrap();
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        rounds,
        &salt,
        password,
        &mut salted,
    );
    let mac = |key: &[u8], data: &[u8]| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA512, key), data)
            .as_ref()
            .to_vec()
    };
    let client_key = mac(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA512, &client_key);
    let without_proof = format!("c=biws,r={}", attrs["r"]);
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mac(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_signature = mac(&mac(&salted, b"Server Key"), auth_message.as_bytes());
    (
        format!("{without_proof},p={}", B64.encode(proof)),
        format!("v={}", B64.encode(server_signature)),
    )
}

#[test]
fn scram_login_in_two_rounds() {
    for (password, ok) in [(&b"carol-secret"[..], true), (b"wrong", false)] {
        let mut s = session(config(0));
        answered(s.check(&handshake("SCRAM-SHA-512"), 0));
        let first_bare = "n=carol,r=CLIENTNONCE";
        let reply = auth_response(&answered(
            s.check(&authenticate(format!("n,,{first_bare}").as_bytes()), 0),
        ));
        assert_eq!(reply.error_code, 0);
        let server_first = String::from_utf8(reply.auth_bytes.to_vec()).unwrap();
        assert!(
            server_first.starts_with("r=CLIENTNONCESERVERNONCE,s="),
            "{server_first}"
        );
        assert_eq!(s.principal(), None, "not logged in after the first round");
        let (client_final, server_final) = scram_client_final(password, first_bare, &server_first);
        match s.check(&authenticate(client_final.as_bytes()), 0) {
            Gate::Answer(a) if ok => {
                let reply = auth_response(&a);
                assert_eq!(reply.auth_bytes, Bytes::from(server_final));
                assert_eq!(s.principal(), Some("carol"));
            }
            Gate::Fail {
                answer: Some(a), ..
            } if !ok => {
                assert_eq!(auth_response(&a).error_code, SASL_AUTHENTICATION_FAILED);
                assert_eq!(s.principal(), None);
            }
            other => panic!("password ok={ok}: {other:?}"),
        }
    }
}

#[test]
fn scram_for_an_unknown_user_fails_at_the_proof() {
    let mut s = session(config(0));
    answered(s.check(&handshake("SCRAM-SHA-512"), 0));
    let reply = auth_response(&answered(s.check(&authenticate(b"n,,n=nobody,r=X"), 0)));
    let server_first = String::from_utf8(reply.auth_bytes.to_vec()).unwrap();
    let (client_final, _) = scram_client_final(b"guess", "n=nobody,r=X", &server_first);
    assert!(matches!(
        s.check(&authenticate(client_final.as_bytes()), 0),
        Gate::Fail {
            answer: Some(_),
            ..
        }
    ));
}

/// An OAUTHBEARER first message with an unsecured token for `sub`, expiring at `exp` (s).
fn bearer(sub: &str, exp: i64) -> Vec<u8> {
    use base64::Engine;
    let b64 = |j: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
    let token = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#.into()),
        b64(format!(r#"{{"sub":"{sub}","iat":0,"exp":{exp}}}"#))
    );
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[test]
fn oauthbearer_logs_in_and_the_session_ends_with_the_token() {
    // Re-authentication every 60 s, a token valid for 10 s more: the session lasts 10 s.
    let mut s = session(config(60_000));
    answered(s.check(&handshake("OAUTHBEARER"), 0));
    let ok = auth_response(&answered(s.check(&authenticate(&bearer("dana", 10)), 0)));
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 10_000));
    assert_eq!(s.principal(), Some("dana"));
    assert!(matches!(s.check(&metadata(), 10_000), Gate::Pass));
    assert!(matches!(s.check(&metadata(), 10_001), Gate::Fail { .. }));
    // Re-authentication must keep the principal.
    let mut s = session(config(60_000));
    answered(s.check(&handshake("OAUTHBEARER"), 0));
    answered(s.check(&authenticate(&bearer("dana", 100)), 0));
    answered(s.check(&handshake("OAUTHBEARER"), 1));
    let Gate::Fail {
        answer: Some(a), ..
    } = s.check(&authenticate(&bearer("eve", 100)), 1)
    else {
        panic!("re-authenticated as another principal");
    };
    assert_eq!(auth_response(&a).error_code, SASL_AUTHENTICATION_FAILED);
}

#[test]
fn a_refused_token_is_a_json_challenge_then_a_failure() {
    let mut s = session(config(0));
    answered(s.check(&handshake("OAUTHBEARER"), 0));
    // Expired at 1 s, checked at 5 s: RFC 7628's error, then the client's \x01, then failure.
    let challenge = auth_response(&answered(s.check(&authenticate(&bearer("dana", 1)), 5000)));
    assert_eq!(challenge.error_code, 0);
    assert_eq!(&challenge.auth_bytes[..], br#"{"status":"invalid_token"}"#);
    assert_eq!(s.principal(), None);
    let Gate::Fail {
        answer: Some(a), ..
    } = s.check(&authenticate(b"\x01"), 5000)
    else {
        panic!("logged in with an expired token");
    };
    let failed = auth_response(&a);
    assert_eq!(failed.error_code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(
        failed.error_message.as_deref(),
        Some(r#"{"status":"invalid_token"}"#)
    );
}
