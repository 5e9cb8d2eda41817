use super::*;
use crate::config::ssl::{ClientAuth, KeyStore, Secret, SslConfig, TlsVersion, TrustStore};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA and certificates it signs, all generated here.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (chain PEM, key PEM) for `names` with subject CN=`cn`,O=Shale.
    fn issue(&self, cn: &str, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Shale");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn settings(pki: &Pki, (chain, key): (String, String), auth: ClientAuth) -> SslConfig {
    SslConfig {
        listener: "SSL".into(),
        keystore: Some(KeyStore::Inline {
            chain,
            key: Secret::new(key),
        }),
        key_password: None,
        truststore: Some(TrustStore::Inline(pki.ca_pem.clone())),
        client_auth: auth,
        protocols: vec![TlsVersion::V12, TlsVersion::V13],
        cipher_suites: Vec::new(),
        principal_rules: principal::PrincipalRules::parse("RULE:^CN=(.*?),O=.*$/$1/U, DEFAULT")
            .unwrap(),
        verify_hostname: true,
    }
}

/// Accepts one connection, echoes 4 bytes, returns the principal (or the handshake error).
async fn serve_one(server: ServerTls) -> (u16, tokio::task::JoinHandle<Result<String, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut stream, principal) = server.accept(tcp).await.map_err(|e| format!("{e:#}"))?;
        let mut buf = [0u8; 4];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(&buf).await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        Ok(principal)
    });
    (port, task)
}

async fn echo(dialer: &Dialer, host: &str, port: u16) -> std::io::Result<()> {
    let mut s = dialer.connect(host, port).await?;
    s.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

/// A server for `localhost` with `auth`.
fn server(pki: &Pki, auth: ClientAuth) -> SslConfig {
    settings(pki, pki.issue("broker", &["localhost"]), auth)
}

/// A client with a certificate for CN=`cn` (none when `None`), trusting `pki`'s CA.
fn client(pki: &Pki, cn: Option<&str>) -> SslConfig {
    let mut c = settings(pki, pki.issue(cn.unwrap_or("x"), &[]), ClientAuth::None);
    if cn.is_none() {
        c.keystore = None;
    }
    c
}

/// One connection of `client` to `server` at `host`: the client's outcome and the server's
/// (the principal, or the handshake error).
async fn exchange(
    server: SslConfig,
    client: &SslConfig,
    host: &str,
) -> (std::io::Result<()>, Result<String, String>) {
    let (port, task) = serve_one(ServerTls::load(server).unwrap()).await;
    let client_side = echo(&Dialer::tls(client).unwrap(), host, port).await;
    (client_side, task.await.unwrap())
}

#[tokio::test]
async fn mutual_tls_names_the_client_by_its_mapped_subject() {
    let pki = Pki::new();
    let c = client(&pki, Some("alice"));
    let (sent, principal) = exchange(server(&pki, ClientAuth::Required), &c, "localhost").await;
    sent.unwrap();
    assert_eq!(principal.unwrap(), "ALICE");
}

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let c = client(&pki, None);
    let (_, principal) = exchange(server(&pki, ClientAuth::Required), &c, "localhost").await;
    let err = principal.unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn requested_client_auth_serves_anonymous_clients() {
    let pki = Pki::new();
    let c = client(&pki, None);
    let (sent, principal) = exchange(server(&pki, ClientAuth::Requested), &c, "localhost").await;
    sent.unwrap();
    assert_eq!(principal.unwrap(), ANONYMOUS);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (pki, other) = (Pki::new(), Pki::new());
    let mut c = client(&other, Some("mallory"));
    c.truststore = Some(TrustStore::Inline(pki.ca_pem.clone()));
    let (_, principal) = exchange(server(&pki, ClientAuth::Required), &c, "localhost").await;
    assert!(principal.is_err());
}

#[tokio::test]
async fn host_names_are_checked_unless_identification_is_off() {
    let pki = Pki::new();
    let named = || {
        settings(
            &pki,
            pki.issue("broker", &["broker.example"]),
            ClientAuth::None,
        )
    };
    let mut c = client(&pki, None);
    let (sent, _) = exchange(named(), &c, "127.0.0.1").await;
    let err = sent.unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    c.verify_hostname = false;
    let (sent, principal) = exchange(named(), &c, "127.0.0.1").await;
    sent.unwrap();
    principal.unwrap();
}

#[tokio::test]
async fn a_subject_no_rule_maps_is_refused() {
    let pki = Pki::new();
    let mut s = server(&pki, ClientAuth::Required);
    s.principal_rules = principal::PrincipalRules::parse("RULE:^CN=admin,.*$/admin/").unwrap();
    let (_, principal) = exchange(s, &client(&pki, Some("bob")), "localhost").await;
    let err = principal.unwrap_err();
    assert!(
        err.contains("no ssl.principal.mapping.rules rule applies to CN=bob,O=Shale"),
        "{err}"
    );
}

#[test]
fn cipher_suites_by_iana_name() {
    let pki = Pki::new();
    let mut s = settings(&pki, pki.issue("b", &["localhost"]), ClientAuth::None);
    s.cipher_suites = vec!["TLS_AES_256_GCM_SHA384".into()];
    s.protocols = vec![TlsVersion::V13];
    ServerTls::load(s.clone()).unwrap();
    s.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_MD5".into()];
    let err = ServerTls::load(s).unwrap_err().to_string();
    assert!(err.contains("not offered by rustls"), "{err}");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let pki = Pki::new();
    let (chain, _) = pki.issue("b", &["localhost"]);
    let (_, other_key) = pki.issue("c", &["localhost"]);
    let s = settings(&pki, (chain, other_key), ClientAuth::None);
    assert!(ServerTls::load(s).is_err());
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections() {
    let pki = Pki::new();
    let first = settings(&pki, pki.issue("old", &["localhost"]), ClientAuth::None);
    let server = Arc::new(ServerTls::load(first.clone()).unwrap());
    let mut next = first.clone();
    let (chain, key) = pki.issue("new", &["localhost"]);
    next.keystore = Some(KeyStore::Inline {
        chain,
        key: Secret::new(key),
    });
    server.reload(next).unwrap();
    let config = server.current.read().config.clone();
    let mut broken = first;
    broken.keystore = Some(KeyStore::Inline {
        chain: "nope".into(),
        key: Secret::new("nope"),
    });
    assert!(server.reload(broken).is_err());
    assert!(
        Arc::ptr_eq(&config, &server.current.read().config),
        "a failed reload keeps the context in use"
    );
}
