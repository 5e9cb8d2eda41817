//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses them (KIP-84): the
//! stored credential (salt, iterations, StoredKey, ServerKey — what UserScramCredentialRecord
//! holds, never the password) and the server's side of the two-round exchange.
//!
//! Hashes, HMAC and PBKDF2 come from ring, which rustls already brings. The server nonce is given
//! by the caller (from the injected RNG), so an exchange replays exactly in tests.

use super::same;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// A SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Kafka's mechanism number (UserScramCredentialRecord, Describe/AlterUserScramCredentials).
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a Kafka mechanism number.
    pub fn from_kafka_type(t: i8) -> Option<ScramMechanism> {
        match t {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's smallest iteration count for this mechanism.
    pub fn min_iterations(self) -> u32 {
        4096
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }
}

/// What the broker keeps of a user's password for one mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

impl ScramCredential {
    /// Derives the credential of `password` with `salt` and `iterations` (CPU work: about a
    /// millisecond per thousand iterations; callers run it off the runtime's workers).
    pub fn derive(
        mechanism: ScramMechanism,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let mut salted = vec![0u8; mechanism.digest().output_len()];
        let rounds = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(mechanism.pbkdf2(), rounds, salt, password, &mut salted);
        ScramCredential::from_salted(mechanism, &salted, salt, iterations)
    }

    /// The credential of a salted password (what AlterUserScramCredentials sends).
    pub fn from_salted(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.mac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: digest::digest(mechanism.digest(), &client_key)
                .as_ref()
                .to_vec(),
            server_key: mechanism.mac(salted_password, b"Server Key"),
            iterations,
        }
    }
}

/// The server's side of one exchange.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    server_nonce: String,
    state: ScramState,
}

#[derive(Debug)]
enum ScramState {
    First,
    Final {
        user: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// Why an exchange failed; the text is Kafka-like and never holds a secret.
pub type ScramError = &'static str;

impl ScramServer {
    /// An exchange whose server nonce part is `server_nonce` (printable, no comma).
    pub fn new(mechanism: ScramMechanism, server_nonce: String) -> ScramServer {
        ScramServer {
            mechanism,
            server_nonce,
            state: ScramState::First,
        }
    }

    /// The user named by the client's first message (`n,,n=user,r=nonce`), decoded from
    /// SCRAM's `=2C`/`=3D` escapes.
    pub fn first_user(client_first: &[u8]) -> Result<String, ScramError> {
        let (_, bare) = split_gs2(client_first)?;
        let fields = attributes(bare)?;
        unescape_user(field(&fields, 'n')?)
    }

    /// The client's first message, and the user's credential (`None`: unknown user); returns
    /// the server's first message. An unknown user gets a made-up salt so the exchange fails
    /// only at the proof, as Kafka answers.
    pub fn first(
        &mut self,
        client_first: &[u8],
        credential: Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ScramState::First) {
            return Err("SCRAM message out of order");
        }
        let (_, bare) = split_gs2(client_first)?;
        let fields = attributes(bare)?;
        let user = unescape_user(field(&fields, 'n')?)?;
        let client_nonce = field(&fields, 'r')?;
        if client_nonce.is_empty() {
            return Err("Authentication failed: invalid SCRAM client nonce");
        }
        let credential = credential.unwrap_or_else(|| ScramCredential {
            salt: self.server_nonce.as_bytes().to_vec(),
            stored_key: Vec::new(),
            server_key: Vec::new(),
            iterations: self.mechanism.min_iterations(),
        });
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = ScramState::Final {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first.into_bytes())
    }

    /// The client's final message; returns the user and the server's final message.
    pub fn last(&mut self, client_final: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let ScramState::Final {
            user,
            credential,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, ScramState::Done)
        else {
            return Err("SCRAM message out of order");
        };
        let text = std::str::from_utf8(client_final).map_err(|_| "invalid SCRAM message")?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or("Authentication failed: SCRAM client final message without a proof")?;
        let fields = attributes(without_proof)?;
        if field(&fields, 'r')? != nonce {
            return Err("Authentication failed: invalid SCRAM nonce");
        }
        let proof = B64.decode(proof).map_err(|_| "invalid SCRAM proof")?;
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let m = self.mechanism;
        let signature = m.mac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let computed = digest::digest(m.digest(), &client_key);
        let valid = proof.len() == signature.len()
            && !credential.stored_key.is_empty()
            && same(computed.as_ref(), &credential.stored_key);
        if !valid {
            return Err("Authentication failed: Invalid user credentials");
        }
        let server_signature = m.mac(&credential.server_key, auth_message.as_bytes());
        Ok((
            user,
            format!("v={}", B64.encode(server_signature)).into_bytes(),
        ))
    }
}

/// The GS2 header (`n,,` or `n,a=authzid,`; channel binding is not supported) and the rest.
fn split_gs2(message: &[u8]) -> Result<(&str, &str), ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| "invalid SCRAM message")?;
    let (flag, rest) = text.split_once(',').ok_or("invalid SCRAM message")?;
    if flag != "n" && flag != "y" {
        return Err("SCRAM channel binding is not supported");
    }
    let (_authzid, bare) = rest.split_once(',').ok_or("invalid SCRAM message")?;
    Ok((&text[..text.len() - bare.len()], bare))
}

/// `a=b,c=d` attributes; the first letter of each is its name.
fn attributes(text: &str) -> Result<Vec<(char, &str)>, ScramError> {
    text.split(',')
        .map(|kv| {
            let mut chars = kv.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) => Ok((k, &kv[2..])),
                _ => Err("invalid SCRAM message"),
            }
        })
        .collect()
}

fn field<'a>(fields: &[(char, &'a str)], name: char) -> Result<&'a str, ScramError> {
    fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .ok_or("invalid SCRAM message: a required attribute is missing")
}

fn unescape_user(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("invalid SCRAM username encoding"),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err("Authentication failed: username not specified");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc_7677_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::derive(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        let mut s = ScramServer::new(
            ScramMechanism::Sha256,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        );
        let first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        assert_eq!(ScramServer::first_user(first).unwrap(), "user");
        let server_first = s.first(first, Some(cred)).unwrap();
        assert_eq!(
            String::from_utf8(server_first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,\
             i=4096"
        );
        let (user, server_final) = s
            .last(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(user, "user");
        assert_eq!(
            String::from_utf8(server_final).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn a_wrong_proof_and_an_unknown_user_fail_alike() {
        let salt = b"salt-salt-salt";
        let cred = ScramCredential::derive(ScramMechanism::Sha512, b"right", salt, 4096);
        for credential in [Some(cred), None] {
            let mut s = ScramServer::new(ScramMechanism::Sha512, "SERVER".into());
            let server_first = s.first(b"n,,n=al=2Cice,r=abc", credential).unwrap();
            assert!(String::from_utf8(server_first)
                .unwrap()
                .starts_with("r=abcSERVER,s="));
            let bad = format!("c=biws,r=abcSERVER,p={}", B64.encode([0u8; 64]));
            assert_eq!(
                s.last(bad.as_bytes()).unwrap_err(),
                "Authentication failed: Invalid user credentials"
            );
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        for bad in [
            &b""[..],
            b"p=tls-unique,,n=u,r=x",
            b"n,,r=x",
            b"n,,n=,r=x",
            b"n,,n=a=4,r=x",
            b"n,,n=u,r=",
            b"\xff",
        ] {
            let mut s = ScramServer::new(ScramMechanism::Sha256, "N".into());
            assert!(s.first(bad, None).is_err(), "{bad:?}");
        }
        let mut s = ScramServer::new(ScramMechanism::Sha256, "N".into());
        assert!(s.last(b"c=biws,r=x,p=AA==").is_err(), "final before first");
        assert!(
            s.first(b"n,,n=u,r=x", None).is_err(),
            "an exchange out of order is over"
        );
        let mut s = ScramServer::new(ScramMechanism::Sha256, "N".into());
        s.first(b"n,,n=u,r=x", None).unwrap();
        assert!(s.last(b"c=biws,r=other,p=AA==").is_err(), "nonce mismatch");
    }
}
