//! TLS settings: Kafka's `ssl.*` keys ([`SSL_CONFIGS`]), each also settable for one listener as
//! `listener.name.<listener>.ssl.*` (that value wins, key by key, as in Kafka), resolved into one
//! [`SslConfig`] per listener that speaks TLS. Only text is checked here; the files are read and
//! the rustls contexts built by `crate::tls`, at start-up and on a reload.

use super::{invalid, split_list, ConfigDef, ConfigError, Kind};
use crate::tls::principal::PrincipalRules;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `ssl.*` keys Shale reads. Order is the docs' order.
pub static SSL_CONFIGS: &[ConfigDef] = &[
    def!(
        "ssl.keystore.type",
        Some("JKS"),
        Str,
        "Format of the key store: PEM or PKCS12. Kafka's default JKS stops start-up with a hint to convert the store to PKCS12 (keytool -importkeystore -deststoretype PKCS12)."
    ),
    def!(
        "ssl.keystore.location",
        None,
        Str,
        "The key store file: for PEM, this server's private key (PKCS#8, PKCS#1 or SEC1; encrypted PKCS#8 with ssl.key.password) and its certificate chain, leaf first; for PKCS12, a store holding one private key entry with its chain."
    ),
    def!(
        "ssl.keystore.certificate.chain",
        None,
        Password,
        "The certificate chain in PEM, inline (instead of ssl.keystore.location)."
    ),
    def!(
        "ssl.keystore.key",
        None,
        Password,
        "The private key in PEM, inline (instead of ssl.keystore.location)."
    ),
    def!(
        "ssl.keystore.password",
        None,
        Password,
        "Password of a PKCS12 key store (required for one); not used by PEM key stores."
    ),
    def!(
        "ssl.key.password",
        None,
        Password,
        "Password of an encrypted PKCS#8 PEM private key (BEGIN ENCRYPTED PRIVATE KEY). With PKCS12 it must equal ssl.keystore.password, as keytool writes stores."
    ),
    def!(
        "ssl.truststore.type",
        Some("JKS"),
        Str,
        "Format of the trust store: PEM or PKCS12 (JKS stops start-up with a hint to convert it)."
    ),
    def!(
        "ssl.truststore.location",
        None,
        Str,
        "File of the certificate authorities trusted to sign client certificates (and, for a broker's own connections, the other nodes' certificates): PEM, or a PKCS12 store whose certificate entries are trusted."
    ),
    def!(
        "ssl.truststore.certificates",
        None,
        Password,
        "The trusted certificates in PEM, inline (instead of ssl.truststore.location)."
    ),
    def!(
        "ssl.truststore.password",
        None,
        Password,
        "Password of a PKCS12 trust store (required for one: it checks the store's integrity); not used by PEM trust stores."
    ),
    def!(
        "ssl.client.auth",
        Some("none"),
        Str,
        "Client certificates: none, requested (checked when sent) or required. A client's certificate subject, through ssl.principal.mapping.rules, is its principal."
    ),
    def!(
        "ssl.enabled.protocols",
        Some("TLSv1.2,TLSv1.3"),
        List,
        "TLS versions offered: TLSv1.2 and/or TLSv1.3 (older versions are not offered by rustls and are ignored)."
    ),
    def!(
        "ssl.protocol",
        Some("TLSv1.3"),
        Str,
        "Kafka's SSLContext protocol; with rustls ssl.enabled.protocols alone decides."
    ),
    def!(
        "ssl.cipher.suites",
        Some(""),
        List,
        "Cipher suites allowed, by IANA name (TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, …); empty means every suite rustls offers. A name rustls does not know stops start-up."
    ),
    def!(
        "ssl.principal.mapping.rules",
        Some("DEFAULT"),
        Str,
        "Rules turning a client certificate's subject (RFC 2253, as Java prints it) into a principal name: RULE:pattern/replacement/[L|U], comma-separated, first match wins; DEFAULT keeps the subject."
    ),
    def!(
        "ssl.endpoint.identification.algorithm",
        Some("https"),
        Str,
        "For a broker's own connections to other nodes: https checks that the peer's certificate names the host connected to; empty skips that check."
    ),
];

/// Whether TLS client certificates are asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Not asked for.
    None,
    /// Asked for; a client without one is still served.
    Requested,
    /// A client without a trusted certificate is refused.
    Required,
}

/// A configured secret (a key or a password): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([hidden])")
    }
}

/// A trust store: the certificate authorities trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustStore {
    /// A PEM file, read at start-up and on every reload.
    File(PathBuf),
    /// Inline PEM text from the configuration (`ssl.truststore.certificates`).
    Inline(String),
    /// A PKCS12 store: its certificate entries are trusted.
    Pkcs12 {
        /// The store file.
        path: PathBuf,
        /// `ssl.truststore.password`.
        password: Secret,
    },
}

/// A key store: private key and certificate chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyStore {
    /// One PEM file with both.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline {
        /// The chain in PEM.
        chain: String,
        /// The key in PEM.
        key: Secret,
    },
    /// A PKCS12 store holding a private key entry with its chain.
    Pkcs12 {
        /// The store file.
        path: PathBuf,
        /// `ssl.keystore.password` (which also opens the key).
        password: Secret,
    },
}

/// The TLS versions Shale can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V12,
    /// TLS 1.3.
    V13,
}

/// One listener's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslConfig {
    /// The listener these settings belong to.
    pub listener: String,
    /// The key store; `None` only where no server side is needed.
    pub keystore: Option<KeyStore>,
    /// `ssl.key.password`: opens an encrypted PKCS#8 PEM key.
    pub key_password: Option<Secret>,
    /// The trust store.
    pub truststore: Option<TrustStore>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols` that rustls offers, in order.
    pub protocols: Vec<TlsVersion>,
    /// `ssl.cipher.suites` (IANA names; empty: all).
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules`.
    pub principal_rules: PrincipalRules,
    /// `ssl.endpoint.identification.algorithm` is `https`.
    pub verify_hostname: bool,
}

/// The value of `key` for `listener`: `listener.name.<listener>.<key>` first (the listener name in
/// any case), then `key`, then its default; an empty value is none.
pub fn listener_value(
    props: &BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<String> {
    listener_prefixed(props, listener, key)
        .or_else(|| props.get(key).cloned())
        .or_else(|| super::broker_def(key).and_then(|d| d.default.map(str::to_string)))
        .filter(|v| !v.trim().is_empty())
}

/// `listener.name.<listener>.<key>` alone (the listener name in any case).
pub fn listener_prefixed(
    props: &BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<String> {
    let prefixed = format!("listener.name.{}.{key}", listener.to_lowercase());
    props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&prefixed))
        .map(|(_, v)| v.clone())
}

/// The `ssl.*` key a listener-prefixed key sets, if it is one (`listener.name.x.ssl.client.auth`
/// → `ssl.client.auth`).
pub fn listener_ssl_key(key: &str) -> Option<&'static ConfigDef> {
    let (_listener, rest) = key.strip_prefix("listener.name.")?.split_once('.')?;
    SSL_CONFIGS.iter().find(|d| d.name == rest)
}

/// Resolves `listener`'s settings. `server` says the listener is bound here, so a key store is
/// required; a listener this node only connects to (a broker's controller listener) needs none.
pub fn resolve(
    props: &BTreeMap<String, String>,
    listener: &str,
    server: bool,
    unsupported: &mut Vec<String>,
) -> Result<SslConfig, ConfigError> {
    let get = |key: &str| listener_value(props, listener, key);
    let keystore = keystore(&get, listener, server, unsupported)?;
    let key_password = get("ssl.key.password").map(Secret);
    let truststore = truststore(&get, listener, unsupported)?;
    let client_auth = match get("ssl.client.auth").as_deref().map(str::trim) {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(invalid(
                "ssl.client.auth",
                other,
                "expected none, requested or required",
            ))
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() && server {
        return Err(invalid(
            "ssl.client.auth",
            &format!("{client_auth:?}").to_lowercase(),
            &format!(
                "listener {listener} checks client certificates but has no trust store: set \
                 ssl.truststore.location or ssl.truststore.certificates"
            ),
        ));
    }
    let protocols = protocols(&get("ssl.enabled.protocols").unwrap_or_default())?;
    let rules = get("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".into());
    let principal_rules = PrincipalRules::parse(&rules)
        .map_err(|e| invalid("ssl.principal.mapping.rules", &rules, &e))?;
    let verify_hostname = match get("ssl.endpoint.identification.algorithm") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("https") => true,
        Some(v) => {
            return Err(invalid(
                "ssl.endpoint.identification.algorithm",
                &v,
                "expected https or empty",
            ))
        }
    };
    Ok(SslConfig {
        listener: listener.to_string(),
        keystore,
        key_password,
        truststore,
        client_auth,
        protocols,
        cipher_suites: split_list(&get("ssl.cipher.suites").unwrap_or_default()),
        principal_rules,
        verify_hostname,
    })
}

fn keystore(
    get: &dyn Fn(&str) -> Option<String>,
    listener: &str,
    server: bool,
    unsupported: &mut Vec<String>,
) -> Result<Option<KeyStore>, ConfigError> {
    let location = get("ssl.keystore.location");
    let chain = get("ssl.keystore.certificate.chain");
    let key = get("ssl.keystore.key");
    if location.is_none() && chain.is_none() && key.is_none() {
        if server {
            return Err(invalid(
                "ssl.keystore.location",
                "",
                &format!(
                    "listener {listener} speaks TLS and needs a key store: set \
                     ssl.keystore.type=PEM and ssl.keystore.location (or \
                     ssl.keystore.certificate.chain and ssl.keystore.key), or \
                     ssl.keystore.type=PKCS12 with ssl.keystore.location and \
                     ssl.keystore.password"
                ),
            ));
        }
        return Ok(None);
    }
    let pkcs12 = store_type(get, "ssl.keystore.type", listener, unsupported)?;
    match (location, chain, key) {
        (Some(path), None, None) if pkcs12 => {
            let password = required_password(get, "ssl.keystore.password", listener)?;
            if get("ssl.key.password").is_some_and(|k| k != password.0) {
                unsupported.push(format!(
                    "ssl.key.password (listener {listener}) differs from ssl.keystore.password: \
                     a PKCS12 key store is read with one password, as keytool writes it"
                ));
            }
            Ok(Some(KeyStore::Pkcs12 {
                path: path.into(),
                password,
            }))
        }
        (Some(path), None, None) => Ok(Some(KeyStore::File(path.into()))),
        (None, Some(chain), Some(key)) if !pkcs12 => Ok(Some(KeyStore::Inline {
            chain,
            key: Secret(key),
        })),
        _ => Err(invalid(
            "ssl.keystore.location",
            "",
            &format!(
                "listener {listener}: set either ssl.keystore.location or both \
                 ssl.keystore.certificate.chain and ssl.keystore.key (inline stores are PEM)"
            ),
        )),
    }
}

fn truststore(
    get: &dyn Fn(&str) -> Option<String>,
    listener: &str,
    unsupported: &mut Vec<String>,
) -> Result<Option<TrustStore>, ConfigError> {
    let location = get("ssl.truststore.location");
    let inline = get("ssl.truststore.certificates");
    if location.is_none() && inline.is_none() {
        return Ok(None);
    }
    let pkcs12 = store_type(get, "ssl.truststore.type", listener, unsupported)?;
    Ok(Some(match (location, inline) {
        (Some(path), None) if pkcs12 => TrustStore::Pkcs12 {
            path: path.into(),
            password: required_password(get, "ssl.truststore.password", listener)?,
        },
        (Some(path), None) => TrustStore::File(path.into()),
        (None, Some(text)) if !pkcs12 => TrustStore::Inline(text),
        _ => {
            return Err(invalid(
                "ssl.truststore.location",
                "",
                &format!(
                    "listener {listener}: set ssl.truststore.location or \
                     ssl.truststore.certificates (PEM only), not both"
                ),
            ))
        }
    }))
}

/// Whether the store `key` names is PKCS12 (else PEM). JKS, Kafka's default, is refused with a
/// hint to convert it; any other type is invalid.
fn store_type(
    get: &dyn Fn(&str) -> Option<String>,
    key: &str,
    listener: &str,
    unsupported: &mut Vec<String>,
) -> Result<bool, ConfigError> {
    let kind = get(key).unwrap_or_else(|| "JKS".into());
    match kind.to_ascii_uppercase().as_str() {
        "PEM" => Ok(false),
        "PKCS12" => Ok(true),
        "JKS" => {
            unsupported.push(format!(
                "{key}=JKS (listener {listener}): JKS stores are not read; convert the store \
                 (keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 \
                 -deststoretype PKCS12) and set {key}=PKCS12, or use PEM"
            ));
            Ok(false)
        }
        _ => Err(invalid(key, &kind, "expected PEM or PKCS12")),
    }
}

/// The password a PKCS12 store needs to be opened (its integrity check and its encrypted bags).
fn required_password(
    get: &dyn Fn(&str) -> Option<String>,
    key: &str,
    listener: &str,
) -> Result<Secret, ConfigError> {
    get(key).map(Secret).ok_or_else(|| {
        invalid(
            key,
            "",
            &format!("listener {listener}: a PKCS12 store needs its password"),
        )
    })
}

fn protocols(v: &str) -> Result<Vec<TlsVersion>, ConfigError> {
    let mut out = Vec::new();
    for p in split_list(v) {
        let version = match p.as_str() {
            "TLSv1.3" => TlsVersion::V13,
            "TLSv1.2" => TlsVersion::V12,
            // Older versions are not offered by rustls; Kafka disables them by default too.
            "TLSv1.1" | "TLSv1" | "SSLv3" => continue,
            _ => return Err(invalid("ssl.enabled.protocols", &p, "unknown TLS version")),
        };
        if !out.contains(&version) {
            out.push(version);
        }
    }
    if out.is_empty() {
        return Err(invalid(
            "ssl.enabled.protocols",
            v,
            "no version that rustls offers: include TLSv1.2 or TLSv1.3",
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "ssl_test.rs"]
mod tests;
