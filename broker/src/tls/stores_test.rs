use super::*;
use crate::config::ssl::{ClientAuth, TlsVersion};
use crate::tls::principal::PrincipalRules;
use p12_keystore::{Certificate, EncryptionAlgorithm, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a leaf it signed, as DER: (ca cert, leaf cert, leaf key in PKCS#8).
fn pki() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "store CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "broker");
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (
        ca_cert.der().to_vec(),
        cert.der().to_vec(),
        key.serialize_der(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A PKCS12 key store holding the leaf's key and chain, written with `algorithm`.
fn key_store(algorithm: EncryptionAlgorithm, password: &str) -> (Vec<u8>, Vec<u8>) {
    let (ca, leaf, key) = pki();
    let chain = PrivateKeyChain::new(
        b"key-1".to_vec(),
        PrivateKey::from_der(&key).unwrap(),
        [
            Certificate::from_der(&leaf).unwrap(),
            Certificate::from_der(&ca).unwrap(),
        ],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("broker", KeyStoreEntry::PrivateKeyChain(chain));
    let bytes = store
        .writer(password)
        .encryption_algorithm(algorithm)
        .write()
        .unwrap();
    (bytes, leaf)
}

fn pkcs12(path: std::path::PathBuf, password: &str) -> KeyStore {
    KeyStore::Pkcs12 {
        path,
        password: Secret::new(password),
    }
}

#[test]
fn pkcs12_key_stores_open_modern_and_legacy() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in [
        EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
    ] {
        let (bytes, leaf) = key_store(algorithm, "changeit");
        let store = pkcs12(write(&dir, "server.p12", &bytes), "changeit");
        let (chain, key) = read_keystore(&store, None).unwrap();
        assert_eq!(chain.len(), 2, "{algorithm:?}");
        assert_eq!(chain[0].as_ref(), leaf.as_slice(), "leaf first");
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    }
}

#[test]
fn a_wrong_password_or_a_jks_file_is_named_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = key_store(EncryptionAlgorithm::PbeWithHmacSha256AndAes256, "right");
    let store = pkcs12(write(&dir, "server.p12", &bytes), "wrong-pw");
    let err = format!("{:#}", read_keystore(&store, None).unwrap_err());
    assert!(err.contains("does not open as a PKCS12 store"), "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");
    let jks = [&JKS_MAGIC[..], &[0, 0, 0, 2, 0, 0, 0, 0]].concat();
    let store = pkcs12(write(&dir, "server.jks", &jks), "changeit");
    let err = format!("{:#}", read_keystore(&store, None).unwrap_err());
    assert!(err.contains("is a JKS store"), "{err}");
}

fn trusting(store: TrustStore) -> SslConfig {
    SslConfig {
        listener: "SSL".into(),
        keystore: None,
        key_password: None,
        truststore: Some(store),
        client_auth: ClientAuth::Required,
        protocols: vec![TlsVersion::V13],
        cipher_suites: Vec::new(),
        principal_rules: PrincipalRules::parse("DEFAULT").unwrap(),
        verify_hostname: true,
    }
}

#[test]
fn a_pkcs12_trust_store_trusts_its_certificate_entries_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pki();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "caroot",
        KeyStoreEntry::Certificate(Certificate::from_der(&ca).unwrap()),
    );
    let path = write(&dir, "trust.p12", &store.writer("pw").write().unwrap());
    let roots = read_truststore(&trusting(TrustStore::Pkcs12 {
        path,
        password: Secret::new("pw"),
    }))
    .unwrap();
    assert_eq!(roots.len(), 1);
    // A key store's chain belongs to its key: nothing in it is a trusted entry.
    let (bytes, _) = key_store(EncryptionAlgorithm::PbeWithHmacSha256AndAes256, "pw");
    let path = write(&dir, "keys.p12", &bytes);
    let err = read_truststore(&trusting(TrustStore::Pkcs12 {
        path,
        password: Secret::new("pw"),
    }))
    .unwrap_err();
    assert!(err.to_string().contains("holds no certificate"), "{err}");
}

/// The leaf's chain and its key as encrypted PKCS#8 PEM, encrypted with `password`.
fn encrypted_pem(password: &str) -> (String, String) {
    let (_, leaf, key) = pki();
    let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
        2048,
        b"0123456789abcdef",
        [7; 16],
    )
    .unwrap();
    let info = pkcs8::PrivateKeyInfoRef::try_from(key.as_slice()).unwrap();
    let der = info.encrypt_with_params(params, password).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let key_pem = format!("{ENCRYPTED_BEGIN}\n{}\n{ENCRYPTED_END}\n", lines.join("\n"));
    let leaf_b64 = base64::engine::general_purpose::STANDARD.encode(&leaf);
    let leaf_pem = format!("-----BEGIN CERTIFICATE-----\n{leaf_b64}\n-----END CERTIFICATE-----\n");
    (leaf_pem, key_pem)
}

#[test]
fn an_encrypted_pem_key_opens_with_the_key_password() {
    let (chain, key) = encrypted_pem("s3cret");
    let store = KeyStore::Inline {
        chain,
        key: Secret::new(key),
    };
    let (certs, key) = read_keystore(&store, Some(&Secret::new("s3cret"))).unwrap();
    assert_eq!(certs.len(), 1);
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    let wrong = format!(
        "{:#}",
        read_keystore(&store, Some(&Secret::new("nope"))).unwrap_err()
    );
    assert!(
        wrong.contains("does not open with ssl.key.password"),
        "{wrong}"
    );
    let missing = format!("{:#}", read_keystore(&store, None).unwrap_err());
    assert!(missing.contains("set ssl.key.password"), "{missing}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let store = KeyStore::Pkcs12 {
        path: "/x.p12".into(),
        password: Secret::new("hunter2"),
    };
    assert!(!format!("{store:?}").contains("hunter2"));
}
