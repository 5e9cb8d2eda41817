//! TLS on rustls (ring): the server side of SSL listeners ([`ServerTls`]), this node's own
//! connections to other brokers and controllers ([`Dialer`]), and the principal a client
//! certificate maps to.
//!
//! Contexts are built from a listener's [`SslConfig`] (Kafka's `ssl.*` keys; PEM or PKCS12 stores,
//! read by `stores`). A
//! listener's context is rebuilt while running, as Kafka rebuilds it, when its `ssl.*` settings
//! change through a dynamic broker config (`kafka-configs.sh --entity-type brokers --alter`), and
//! — which Kafka does not do — when a store file it reads changes on disk, so a renewed
//! certificate is picked up without any call ([`Contexts::refresh`]). Handshakes that start
//! afterwards use the new context; connections already open keep theirs. A store that does not
//! load leaves the context in use, logged. Reading the store files is blocking I/O: callers run
//! `load` and `refresh` through `shale_common::blocking`.

pub mod principal;
mod stores;
pub mod x500;

use crate::config::ssl::{ClientAuth, KeyStore, SslConfig, TlsVersion, TrustStore};
use crate::config::BrokerConfig;
use anyhow::{bail, Context};
use parking_lot::RwLock;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream a connection runs on: plain TCP or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug + 'static> Stream for T {}

/// The principal of a client that presented no certificate.
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Every TLS context of this node: one server side per bound TLS listener, one client side per
/// TLS listener this node connects to (the inter-broker listener, the controller listener).
#[derive(Debug, Default)]
pub struct Contexts {
    servers: BTreeMap<String, Arc<ServerTls>>,
    dialers: BTreeMap<String, Dialer>,
    /// The dynamic `ssl.*` configs the stores were last resolved with.
    applied: parking_lot::Mutex<BTreeMap<String, String>>,
}

impl Contexts {
    /// Builds them from the configuration (blocking: reads the stores).
    pub fn load(config: &BrokerConfig) -> anyhow::Result<Contexts> {
        let mut contexts = Contexts::default();
        let bound = |name: &str| config.listeners.iter().any(|l| l.name == name);
        let dialed: Vec<&String> = std::iter::once(&config.replication.inter_broker_listener)
            .chain(config.controller_listener_names.first())
            .collect();
        for (name, settings) in &config.ssl {
            if bound(name) {
                let server = ServerTls::load(settings.clone())?;
                contexts.servers.insert(name.clone(), Arc::new(server));
            }
            if dialed.contains(&name) {
                let dialer = Dialer::tls(settings)
                    .with_context(|| format!("connections to listener {name}"))?;
                contexts.dialers.insert(name.clone(), dialer);
            }
        }
        Ok(contexts)
    }

    /// Brings every listener's context up to date (blocking): rebuilt with new settings when the
    /// dynamic `ssl.*` configs of this broker (`dynamic`: the cluster default's, then this
    /// node's, over `server.properties`) change them, or re-read when a store file changed.
    pub fn refresh(&self, config: &BrokerConfig, dynamic: &BTreeMap<String, String>) {
        *self.applied.lock() = dynamic.clone();
        for (name, server) in &self.servers {
            let mut props = config.explicit.clone();
            props.extend(dynamic.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut unsupported = Vec::new();
            let wanted = crate::config::ssl::resolve(&props, name, true, &mut unsupported);
            let outcome = match wanted {
                Ok(_) if !unsupported.is_empty() => Err(anyhow::anyhow!(unsupported.join("; "))),
                Ok(wanted) if wanted != server.settings() => server.reload(wanted).map(|()| true),
                Ok(_) => server.reload_if_changed(),
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok(true) => tracing::info!(listener = %name, "TLS key and trust stores reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(listener = %name, error = %format!("{e:#}"),
                    "TLS stores not reloaded; the listener keeps its current ones"),
            }
        }
    }

    /// [`Contexts::refresh`] when the dynamic `ssl.*` configs differ from the last ones (a
    /// node following the metadata log asks at every offset; store files are the housekeeping
    /// round's to check).
    pub fn refresh_if_changed(&self, config: &BrokerConfig, dynamic: &BTreeMap<String, String>) {
        if *self.applied.lock() != *dynamic {
            self.refresh(config, dynamic);
        }
    }

    /// The server side of `listener`, if it speaks TLS.
    pub fn server(&self, listener: &str) -> Option<Arc<ServerTls>> {
        self.servers.get(listener).cloned()
    }

    /// How to connect to `listener` on another node.
    pub fn dialer(&self, listener: &str) -> Dialer {
        self.dialers.get(listener).cloned().unwrap_or_default()
    }
}

/// The server side of one TLS listener.
#[derive(Debug)]
pub struct ServerTls {
    current: RwLock<Loaded>,
}

/// A built context, the settings it came from and the store files' modification times.
#[derive(Debug)]
struct Loaded {
    settings: SslConfig,
    config: Arc<ServerConfig>,
    stamps: Vec<Option<std::time::SystemTime>>,
}

impl ServerTls {
    /// Reads the stores and builds the context (blocking).
    pub fn load(settings: SslConfig) -> anyhow::Result<ServerTls> {
        Ok(ServerTls {
            current: RwLock::new(Loaded::new(settings)?),
        })
    }

    /// Rebuilds the context with `settings` (blocking). On an error the context in use stays.
    pub fn reload(&self, settings: SslConfig) -> anyhow::Result<()> {
        let loaded = Loaded::new(settings)?;
        *self.current.write() = loaded;
        Ok(())
    }

    /// Rebuilds the context when a store file changed since it was read (blocking); says
    /// whether it did.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let settings = {
            let current = self.current.read();
            if stamps(&current.settings) == current.stamps {
                return Ok(false);
            }
            current.settings.clone()
        };
        self.reload(settings)?;
        Ok(true)
    }

    /// The settings in use.
    pub fn settings(&self) -> SslConfig {
        self.current.read().settings.clone()
    }

    /// Completes the handshake on an accepted connection and names the client: the mapped
    /// subject of its certificate, else [`ANONYMOUS`]. A certificate no mapping rule applies to
    /// is refused.
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> anyhow::Result<(tokio_rustls::server::TlsStream<TcpStream>, String)> {
        let (config, rules) = {
            let current = self.current.read();
            (
                current.config.clone(),
                current.settings.principal_rules.clone(),
            )
        };
        let stream = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
        let (_, session) = stream.get_ref();
        let principal = match session.peer_certificates().and_then(|c| c.first()) {
            None => ANONYMOUS.to_string(),
            Some(cert) => {
                let subject =
                    x500::subject_rfc2253(cert).context("unreadable client certificate subject")?;
                rules.apply(&subject).with_context(|| {
                    format!("no ssl.principal.mapping.rules rule applies to {subject}")
                })?
            }
        };
        Ok((stream, principal))
    }
}

impl Loaded {
    fn new(settings: SslConfig) -> anyhow::Result<Loaded> {
        // Stamps first: a file replaced while it is read is read again at the next check.
        let stamps = stamps(&settings);
        let config = Arc::new(server_config(&settings)?);
        Ok(Loaded {
            settings,
            config,
            stamps,
        })
    }
}

/// The modification times of the store files `settings` reads.
fn stamps(settings: &SslConfig) -> Vec<Option<std::time::SystemTime>> {
    let keystore = match &settings.keystore {
        Some(KeyStore::File(path) | KeyStore::Pkcs12 { path, .. }) => Some(path),
        _ => None,
    };
    let truststore = match &settings.truststore {
        Some(TrustStore::File(path) | TrustStore::Pkcs12 { path, .. }) => Some(path),
        _ => None,
    };
    [keystore, truststore]
        .into_iter()
        .flatten()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// How this node opens connections to another node's listener: plain TCP, or TLS with the
/// listener's settings (trust store, this node's key store for mutual TLS, host name check).
#[derive(Clone, Debug, Default)]
pub struct Dialer {
    tls: Option<Arc<ClientConfig>>,
}

/// Two dialers are equal when both are plain TCP or share one TLS context.
impl PartialEq for Dialer {
    fn eq(&self, other: &Dialer) -> bool {
        match (&self.tls, &other.tls) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Dialer {}

impl Dialer {
    /// Plain TCP.
    pub fn plaintext() -> Dialer {
        Dialer::default()
    }

    /// TLS with `settings` (blocking: reads the stores).
    pub fn tls(settings: &SslConfig) -> anyhow::Result<Dialer> {
        Ok(Dialer {
            tls: Some(Arc::new(client_config(settings)?)),
        })
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects to `host:port` (and completes the TLS handshake).
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let Some(config) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await?;
        Ok(Box::new(stream))
    }
}

/// ring with the suites `ssl.cipher.suites` allows (IANA names; rustls names TLS 1.3 suites
/// `TLS13_…`).
fn provider(settings: &SslConfig) -> anyhow::Result<Arc<CryptoProvider>> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        let iana = |s: &rustls::SupportedCipherSuite| {
            let name = format!("{:?}", s.suite());
            match name.strip_prefix("TLS13_") {
                Some(rest) => format!("TLS_{rest}"),
                None => name,
            }
        };
        for wanted in &settings.cipher_suites {
            if !provider.cipher_suites.iter().any(|s| &iana(s) == wanted) {
                let known: Vec<String> = provider.cipher_suites.iter().map(iana).collect();
                bail!(
                    "ssl.cipher.suites (listener {}): {wanted} is not offered by rustls; it \
                     offers {}",
                    settings.listener,
                    known.join(", ")
                );
            }
        }
        provider
            .cipher_suites
            .retain(|s| settings.cipher_suites.contains(&iana(s)));
    }
    Ok(Arc::new(provider))
}

fn versions(settings: &SslConfig) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|v| match v {
            TlsVersion::V12 => &rustls::version::TLS12,
            TlsVersion::V13 => &rustls::version::TLS13,
        })
        .collect()
}

fn server_config(settings: &SslConfig) -> anyhow::Result<ServerConfig> {
    let listener = &settings.listener;
    let Some(keystore) = &settings.keystore else {
        bail!("listener {listener} has no key store");
    };
    let (chain, key) = stores::read_keystore(keystore, settings.key_password.as_ref())
        .with_context(|| format!("reading the key store of listener {listener}"))?;
    let provider = provider(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings))
        .with_context(|| format!("ssl.enabled.protocols of listener {listener}"))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = stores::read_truststore(settings)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = match auth {
                ClientAuth::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .with_context(|| format!("the key store of listener {listener}"))?;
    // Kafka clients do not resume sessions across connections; tickets would only cost memory.
    config.send_tls13_tickets = 0;
    Ok(config)
}

fn client_config(settings: &SslConfig) -> anyhow::Result<ClientConfig> {
    let listener = &settings.listener;
    let provider = provider(settings)?;
    let roots = stores::read_truststore(settings)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings))
        .with_context(|| format!("ssl.enabled.protocols of listener {listener}"))?;
    let builder = if settings.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(inner)))
    };
    Ok(match &settings.keystore {
        Some(keystore) => {
            let (chain, key) = stores::read_keystore(keystore, settings.key_password.as_ref())
                .with_context(|| format!("reading the key store of listener {listener}"))?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    })
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is verified against the trust
/// store, the host name is not.
#[derive(Debug)]
struct AnyHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
#[path = "tls_test.rs"]
mod tests;
