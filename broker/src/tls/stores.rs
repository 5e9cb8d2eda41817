//! Key and trust stores read into rustls types: PEM (a private key — plain, or encrypted PKCS#8
//! opened with `ssl.key.password` — and its chain; a file of CA certificates) and PKCS12 (the
//! store keytool and openssl write, opened with its password through `p12-keystore`). JKS is
//! refused earlier, by the configuration. Errors say what is wrong with which store and never
//! carry a password or key material. Blocking: callers are on the blocking path (see the parent).

use crate::config::ssl::{KeyStore, Secret, SslConfig, TrustStore};
use anyhow::{anyhow, bail, Context};
use base64::Engine;
use p12_keystore::{Pkcs12Archive, Pkcs12ImportPolicy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::path::Path;
use std::sync::Arc;

/// A certificate chain, leaf first.
pub(super) type Chain = Vec<CertificateDer<'static>>;

/// The first bytes of a JKS file (Java's own key store format).
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The chain and private key of `store`; `key_password` opens an encrypted PEM key.
pub(super) fn read_keystore(
    store: &KeyStore,
    key_password: Option<&Secret>,
) -> anyhow::Result<(Chain, PrivateKeyDer<'static>)> {
    let (chain, key) = match store {
        KeyStore::File(path) => {
            let text = read(path)?;
            (certs(&text)?, pem_key(&text, key_password)?)
        }
        KeyStore::Inline { chain, key } => (
            certs(chain.as_bytes())?,
            pem_key(key.expose().as_bytes(), key_password)?,
        ),
        KeyStore::Pkcs12 { path, password } => pkcs12_key_chain(path, password)?,
    };
    if chain.is_empty() {
        bail!("no certificate in the key store");
    }
    Ok((chain, key))
}

/// The certificate authorities `settings` trusts.
pub(super) fn read_truststore(settings: &SslConfig) -> anyhow::Result<Arc<RootCertStore>> {
    let listener = &settings.listener;
    let trusted = match &settings.truststore {
        None => bail!(
            "listener {listener} needs a trust store (ssl.truststore.location or \
             ssl.truststore.certificates)"
        ),
        Some(TrustStore::File(path)) => certs(&read(path)?)?,
        Some(TrustStore::Inline(text)) => certs(text.as_bytes())?,
        Some(TrustStore::Pkcs12 { path, password }) => pkcs12_trusted(path, password)?,
    };
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots
            .add(cert)
            .with_context(|| format!("a certificate of listener {listener}'s trust store"))?;
    }
    if roots.is_empty() {
        bail!("listener {listener}'s trust store holds no certificate");
    }
    Ok(Arc::new(roots))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn certs(pem: &[u8]) -> anyhow::Result<Chain> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .context("a certificate does not parse")
}

/// The private key in PEM text: an encrypted PKCS#8 key when the text holds one (it then needs
/// `password`), else a plain PKCS#8, PKCS#1 or SEC1 key.
fn pem_key(text: &[u8], password: Option<&Secret>) -> anyhow::Result<PrivateKeyDer<'static>> {
    if let Some(encrypted) = encrypted_pem_block(text)? {
        let Some(password) = password else {
            bail!("the private key is encrypted: set ssl.key.password");
        };
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(encrypted.as_slice())
            .map_err(|e| anyhow!("the encrypted private key does not parse: {e}"))?;
        let plain = info.decrypt(password.expose()).map_err(|_| {
            anyhow!("the encrypted private key does not open with ssl.key.password")
        })?;
        return Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()));
    }
    PrivateKeyDer::from_pem_slice(text).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow!(
            "no private key in the key store (PKCS#8, PKCS#1 or SEC1 PEM, or encrypted PKCS#8)"
        ),
        e => anyhow!("the private key does not parse: {e}"),
    })
}

/// The DER inside the first `ENCRYPTED PRIVATE KEY` block of `text`, if there is one.
fn encrypted_pem_block(text: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let text = String::from_utf8_lossy(text);
    let Some(start) = text.find(ENCRYPTED_BEGIN) else {
        return Ok(None);
    };
    let body = &text[start + ENCRYPTED_BEGIN.len()..];
    let end = body
        .find(ENCRYPTED_END)
        .context("the encrypted private key has no END line")?;
    let base64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map(Some)
        .context("the encrypted private key is not base64")
}

/// A PKCS12 file's bytes, refusing a JKS store plainly.
fn pkcs12_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let data = read(path)?;
    if data.starts_with(&JKS_MAGIC) {
        bail!(
            "{} is a JKS store, not PKCS12: convert it with keytool -importkeystore \
             -deststoretype PKCS12",
            path.display()
        );
    }
    Ok(data)
}

fn wrong_password(path: &Path, e: p12_keystore::error::Error) -> anyhow::Error {
    anyhow!(
        "{} does not open as a PKCS12 store with its password ({e})",
        path.display()
    )
}

/// The first private key entry of a PKCS12 key store (by alias, as keytool lists them) with
/// its chain, leaf first.
fn pkcs12_key_chain(
    path: &Path,
    password: &Secret,
) -> anyhow::Result<(Chain, PrivateKeyDer<'static>)> {
    let data = pkcs12_bytes(path)?;
    let store =
        p12_keystore::KeyStore::from_pkcs12(&data, password.expose(), Pkcs12ImportPolicy::Strict)
            .map_err(|e| wrong_password(path, e))?;
    let (_alias, entry) = store.private_key_chain().with_context(|| {
        format!(
            "{} holds no private key entry with its certificate",
            path.display()
        )
    })?;
    let chain = entry
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(entry.key().as_der().to_vec().into());
    Ok((chain, key))
}

/// The certificates a PKCS12 trust store trusts: the entries keytool marks trusted; in a store
/// without such marks and without private keys (a CA bundle openssl made), every certificate.
/// Java ignores unmarked certificates, which only ever surprises; a key store's own chain is
/// never trusted.
fn pkcs12_trusted(path: &Path, password: &Secret) -> anyhow::Result<Chain> {
    let data = pkcs12_bytes(path)?;
    let archive = Pkcs12Archive::from_pkcs12(&data, password.expose())
        .map_err(|e| wrong_password(path, e))?;
    let marked = archive.certs.iter().any(|bag| bag.trusted);
    let bundle = !marked && archive.keys.is_empty();
    Ok(archive
        .certs
        .into_iter()
        .filter(|bag| bag.trusted || bundle)
        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
        .collect())
}

#[cfg(test)]
#[path = "stores_test.rs"]
mod tests;
