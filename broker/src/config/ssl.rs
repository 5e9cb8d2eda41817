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
        "Format of the key store. Shale reads PEM; Kafka's default JKS (and PKCS12) stop start-up with a hint to convert the store to PEM."
    ),
    def!(
        "ssl.keystore.location",
        None,
        Str,
        "PEM file holding this server's private key (PKCS#8, PKCS#1 or SEC1, unencrypted) and its certificate chain, leaf first."
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
        "Not used by PEM key stores (accepted and never shown)."
    ),
    def!(
        "ssl.key.password",
        None,
        Password,
        "Password of an encrypted private key. Encrypted PEM keys are not read yet: setting it stops start-up."
    ),
    def!(
        "ssl.truststore.type",
        Some("JKS"),
        Str,
        "Format of the trust store: PEM."
    ),
    def!(
        "ssl.truststore.location",
        None,
        Str,
        "PEM file of the certificate authorities trusted to sign client certificates (and, for a broker's own connections, the other nodes' certificates)."
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
        "Not used by PEM trust stores (accepted and never shown)."
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

/// Where PEM text comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    /// A file, read at start-up and on every reload.
    File(PathBuf),
    /// Inline text from the configuration.
    Inline(String),
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
        key: String,
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
    /// The trust store.
    pub truststore: Option<Pem>,
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
                     ssl.keystore.certificate.chain and ssl.keystore.key)"
                ),
            ));
        }
        return Ok(None);
    }
    store_type(get, "ssl.keystore.type", listener, unsupported);
    if get("ssl.key.password").is_some() {
        unsupported.push(format!(
            "ssl.key.password (listener {listener}): encrypted private keys are not supported \
             yet; decrypt it (openssl pkey -in key.pem -out plain.pem) and protect the file"
        ));
    }
    match (location, chain, key) {
        (Some(path), None, None) => Ok(Some(KeyStore::File(path.into()))),
        (None, Some(chain), Some(key)) => Ok(Some(KeyStore::Inline { chain, key })),
        _ => Err(invalid(
            "ssl.keystore.location",
            "",
            &format!(
                "listener {listener}: set either ssl.keystore.location or both \
                 ssl.keystore.certificate.chain and ssl.keystore.key"
            ),
        )),
    }
}

fn truststore(
    get: &dyn Fn(&str) -> Option<String>,
    listener: &str,
    unsupported: &mut Vec<String>,
) -> Result<Option<Pem>, ConfigError> {
    let store = match (
        get("ssl.truststore.location"),
        get("ssl.truststore.certificates"),
    ) {
        (None, None) => return Ok(None),
        (Some(path), None) => Pem::File(path.into()),
        (None, Some(text)) => Pem::Inline(text),
        (Some(_), Some(_)) => {
            return Err(invalid(
                "ssl.truststore.location",
                "",
                &format!(
                    "listener {listener}: set ssl.truststore.location or \
                     ssl.truststore.certificates, not both"
                ),
            ))
        }
    };
    store_type(get, "ssl.truststore.type", listener, unsupported);
    Ok(Some(store))
}

/// Only PEM stores are read.
fn store_type(
    get: &dyn Fn(&str) -> Option<String>,
    key: &str,
    listener: &str,
    unsupported: &mut Vec<String>,
) {
    let kind = get(key).unwrap_or_else(|| "JKS".into());
    if !kind.eq_ignore_ascii_case("PEM") {
        unsupported.push(format!(
            "{key}={kind} (listener {listener}): only PEM stores are read; convert the store \
             (keytool -importkeystore -deststoretype PKCS12, then openssl pkcs12 -nodes) and set \
             {key}=PEM"
        ));
    }
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
