use super::*;
use crate::config::props;

const PEM_FILE: &[(&str, &str)] = &[
    ("ssl.keystore.type", "PEM"),
    ("ssl.keystore.location", "/etc/shale/server.pem"),
];

#[test]
fn listener_prefixed_keys_win_key_by_key() {
    let mut p = props(PEM_FILE);
    p.insert("ssl.client.auth".into(), "requested".into());
    p.insert("ssl.truststore.type".into(), "PEM".into());
    p.insert("ssl.truststore.location".into(), "/ca.pem".into());
    p.insert(
        "listener.name.EXTERNAL.ssl.client.auth".into(),
        "required".into(),
    );
    let mut u = Vec::new();
    let ext = resolve(&p, "EXTERNAL", true, &mut u).unwrap();
    let int = resolve(&p, "INTERNAL", true, &mut u).unwrap();
    assert!(u.is_empty(), "{u:?}");
    assert_eq!(ext.client_auth, ClientAuth::Required);
    assert_eq!(int.client_auth, ClientAuth::Requested);
    assert_eq!(
        ext.keystore,
        Some(KeyStore::File("/etc/shale/server.pem".into()))
    );
    assert_eq!(ext.truststore, Some(TrustStore::File("/ca.pem".into())));
    assert_eq!(ext.protocols, vec![TlsVersion::V12, TlsVersion::V13]);
    assert!(ext.verify_hostname);
}

#[test]
fn a_server_needs_a_key_store_a_client_does_not() {
    let mut u = Vec::new();
    let err = resolve(&props(&[]), "SSL", true, &mut u).unwrap_err();
    assert!(err.to_string().contains("needs a key store"), "{err}");
    let client = resolve(&props(&[]), "CONTROLLER", false, &mut u).unwrap();
    assert_eq!(client.keystore, None);
}

#[test]
fn jks_is_reported_and_pkcs12_is_read_with_its_password() {
    let mut u = Vec::new();
    let p = props(&[
        ("ssl.keystore.location", "/k.jks"),
        ("ssl.keystore.password", "secret"),
        ("ssl.key.password", "secret"),
    ]);
    resolve(&p, "SSL", true, &mut u).unwrap();
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].contains("ssl.keystore.type=JKS") && u[0].contains("PKCS12"));

    let mut p = props(&[
        ("ssl.keystore.type", "pkcs12"),
        ("ssl.keystore.location", "/k.p12"),
        ("ssl.keystore.password", "secret"),
        ("ssl.truststore.type", "PKCS12"),
        ("ssl.truststore.location", "/t.p12"),
        ("ssl.truststore.password", "other"),
    ]);
    let c = resolve(&p, "SSL", true, &mut u).unwrap();
    assert_eq!(u.len(), 1, "nothing more reported: {u:?}");
    assert_eq!(
        c.keystore,
        Some(KeyStore::Pkcs12 {
            path: "/k.p12".into(),
            password: Secret::new("secret")
        })
    );
    assert!(matches!(c.truststore, Some(TrustStore::Pkcs12 { .. })));
    // One password opens a PKCS12 store and its key.
    p.insert("ssl.key.password".into(), "different".into());
    resolve(&p, "SSL", true, &mut u).unwrap();
    assert!(u[1].contains("differs from ssl.keystore.password"), "{u:?}");
    assert!(
        !u.iter()
            .any(|m| m.contains("secret") || m.contains("different")),
        "no secret in a message"
    );
    // Without its password a PKCS12 store cannot be opened; inline stores are PEM.
    p.remove("ssl.truststore.password");
    let err = resolve(&p, "SSL", true, &mut u).unwrap_err().to_string();
    assert!(err.contains("ssl.truststore.password"), "{err}");
    let p = props(&[
        ("ssl.keystore.type", "PKCS12"),
        ("ssl.keystore.certificate.chain", "x"),
        ("ssl.keystore.key", "y"),
    ]);
    assert!(resolve(&p, "SSL", true, &mut u).is_err());
    let p = props(&[
        ("ssl.keystore.type", "BCFKS"),
        ("ssl.keystore.location", "/k"),
    ]);
    let err = resolve(&p, "SSL", true, &mut u).unwrap_err().to_string();
    assert!(err.contains("expected PEM or PKCS12"), "{err}");
}

#[test]
fn client_auth_needs_a_trust_store() {
    let mut p = props(PEM_FILE);
    p.insert("ssl.client.auth".into(), "required".into());
    let err = resolve(&p, "SSL", true, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("no trust store"), "{err}");
}

#[test]
fn bad_values_are_errors() {
    for (k, v) in [
        ("ssl.client.auth", "sometimes"),
        ("ssl.enabled.protocols", "TLSv1.1"),
        ("ssl.enabled.protocols", "TLSv9"),
        ("ssl.principal.mapping.rules", "RULE:(/x/"),
        ("ssl.endpoint.identification.algorithm", "ldap"),
    ] {
        let mut p = props(PEM_FILE);
        p.insert(k.into(), v.into());
        assert!(
            resolve(&p, "SSL", true, &mut Vec::new()).is_err(),
            "{k}={v}"
        );
    }
}

#[test]
fn inline_stores() {
    let p = props(&[
        ("ssl.keystore.type", "PEM"),
        (
            "ssl.keystore.certificate.chain",
            "-----BEGIN CERTIFICATE-----",
        ),
        ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.certificates", "-----BEGIN CERTIFICATE-----"),
        ("ssl.enabled.protocols", "TLSv1.3"),
        ("ssl.endpoint.identification.algorithm", ""),
    ]);
    let mut u = Vec::new();
    let c = resolve(&p, "SSL", true, &mut u).unwrap();
    assert!(u.is_empty(), "{u:?}");
    assert!(matches!(c.keystore, Some(KeyStore::Inline { .. })));
    assert!(matches!(c.truststore, Some(TrustStore::Inline(_))));
    assert_eq!(c.protocols, vec![TlsVersion::V13]);
    assert!(!c.verify_hostname);
}

#[test]
fn listener_ssl_keys_are_recognised() {
    assert_eq!(
        listener_ssl_key("listener.name.external.ssl.client.auth").map(|d| d.name),
        Some("ssl.client.auth")
    );
    assert!(listener_ssl_key("listener.name.external.ssl.nope").is_none());
    assert!(listener_ssl_key("ssl.client.auth").is_none());
}
