//! SASL authentication of a connection on a SASL_PLAINTEXT or SASL_SSL listener (KIP-43's
//! SaslHandshake v1 + SaslAuthenticate, KIP-152 error reporting, KIP-368 re-authentication).
//!
//! A [`Session`] sits in front of a connection's requests. Until the client has authenticated it
//! may send ApiVersions, then SaslHandshake naming a mechanism, then SaslAuthenticate with its
//! token; anything else closes the connection, as Kafka closes it. A refused handshake
//! (UNSUPPORTED_SASL_MECHANISM) or token (SASL_AUTHENTICATION_FAILED) is answered, then the
//! connection is closed. Once authenticated, requests pass through; the username is the
//! principal. With `connections.max.reauth.ms` the session expires: the client re-authenticates
//! on the same connection (SaslHandshake + SaslAuthenticate again, as the same user) before then,
//! or its next request closes the connection.
//!
//! Tokens and passwords are never logged: failure reasons are Kafka's fixed messages.

pub mod jaas;
pub mod oauth;
pub mod scram;

use crate::config::sasl::{Mechanism, SaslConfig};
use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use scram::{ScramCredential, ScramMechanism, ScramServer};
use shale_protocol::codec;
use std::borrow::Cow;
use std::sync::Arc;

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// What to do with one request.
#[derive(Debug)]
pub enum Gate {
    /// Not a SASL matter: handle it as usual.
    Pass,
    /// A SASL request, answered.
    Answer(Bytes),
    /// Close the connection, after sending `answer` when there is one.
    Fail {
        /// The error response to send first.
        answer: Option<Bytes>,
        /// Why, for the log (never a secret).
        reason: String,
    },
}

/// Where SCRAM credentials and server nonces come from (the metadata image and the system's
/// random source in the broker; fixed ones in tests).
pub trait ScramSource: Send + Sync + std::fmt::Debug {
    /// The user's credential for `mechanism`, if it has one.
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
    /// A fresh, unpredictable server nonce (printable, no comma).
    fn nonce(&self) -> String;
}

/// One connection's authentication state.
#[derive(Debug)]
pub struct Session {
    config: Arc<SaslConfig>,
    scram: Arc<dyn ScramSource>,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    /// A mechanism chosen; `previous` is the principal a re-authentication must keep.
    Handshaken {
        mechanism: Mechanism,
        previous: Option<String>,
    },
    /// SCRAM's first round answered; its final message is next.
    ScramFinal {
        server: Box<ScramServer>,
        previous: Option<String>,
    },
    /// An OAUTHBEARER token refused with this JSON error; the client's `\x01` is next, and
    /// the login fails.
    OAuthRefused {
        error: String,
        previous: Option<String>,
    },
    Authenticated {
        principal: String,
        expires_ms: Option<i64>,
    },
}

/// Where one SaslAuthenticate leaves the exchange.
enum Progress {
    /// Another round follows; these bytes answer this one.
    Continue(Vec<u8>),
    /// Logged in as this user; these bytes are the last answer; the credential expires then
    /// (ms since the epoch), if it does.
    Done(String, Vec<u8>, Option<i64>),
}

/// Why a login failed: Kafka's fixed messages, or an OAUTHBEARER token's JSON error.
type Failure = Cow<'static, str>;

impl Session {
    /// A session for a new connection on a listener with `config`.
    pub fn new(config: Arc<SaslConfig>, scram: Arc<dyn ScramSource>) -> Session {
        Session {
            config,
            scram,
            state: State::Start,
        }
    }

    /// The authenticated principal's name, once there is one.
    pub fn principal(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated { principal, .. } => Some(principal),
            State::Handshaken { previous, .. }
            | State::ScramFinal { previous, .. }
            | State::OAuthRefused { previous, .. } => previous.as_deref(),
            State::Start => None,
        }
    }

    /// How long to hold back the answer to a failed login (`connection.failed.authentication.delay.ms`).
    pub fn failure_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.failure_delay_ms)
    }

    /// The largest request frame to accept now: `sasl.server.max.receive.size` until the client
    /// has authenticated, else `max`.
    pub fn max_frame(&self, max: usize) -> usize {
        match self.principal() {
            Some(_) => max,
            None => self.config.max_receive_size.min(max),
        }
    }

    /// Decides about one request frame at `now_ms` (wall clock).
    pub fn check(&mut self, frame: &Bytes, now_ms: i64) -> Gate {
        let Ok((key, version, correlation)) = codec::peek_header(frame) else {
            return fail(None, "unreadable request header before authentication");
        };
        let api = ApiKey::try_from(key).ok();
        match (&self.state, api) {
            (State::Authenticated { expires_ms, .. }, Some(k)) if k != ApiKey::SaslHandshake => {
                match expires_ms {
                    Some(t) if now_ms > *t => fail(
                        None,
                        "the SASL session expired (connections.max.reauth.ms) without \
                         re-authentication",
                    ),
                    _ => Gate::Pass,
                }
            }
            (State::Start, Some(ApiKey::ApiVersions)) => Gate::Pass,
            (State::Start | State::Authenticated { .. }, Some(ApiKey::SaslHandshake)) => {
                self.handshake(frame, version, correlation)
            }
            (
                State::Handshaken { .. } | State::ScramFinal { .. } | State::OAuthRefused { .. },
                Some(ApiKey::SaslAuthenticate),
            ) => self.authenticate(frame, version, correlation, now_ms),
            (State::Authenticated { .. }, None) => Gate::Pass,
            _ => fail(
                None,
                &format!(
                    "api key {key} received in SASL state {}: the client must authenticate \
                     first (SaslHandshake, then SaslAuthenticate)",
                    self.state_name()
                ),
            ),
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Start => "initial",
            State::Handshaken { .. } => "handshake done",
            State::ScramFinal { .. } => "SCRAM first round done",
            State::OAuthRefused { .. } => "OAUTHBEARER token refused",
            State::Authenticated { .. } => "authenticated",
        }
    }

    fn handshake(&mut self, frame: &Bytes, version: i16, correlation: i32) -> Gate {
        if version < 1 {
            return fail(
                None,
                "SaslHandshake v0 (raw SASL tokens, Kafka 0.10) is not supported; clients send v1",
            );
        }
        let Some(req) = decode::<SaslHandshakeRequest>(frame) else {
            return fail(None, "malformed SaslHandshake request");
        };
        let offered: Vec<StrBytes> = self
            .config
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let wanted = req.mechanism.as_str();
        let chosen = self
            .config
            .mechanisms
            .iter()
            .copied()
            .find(|m| m.name() == wanted);
        let code = if chosen.is_some() {
            0
        } else {
            UNSUPPORTED_SASL_MECHANISM
        };
        let resp = SaslHandshakeResponse::default()
            .with_error_code(code)
            .with_mechanisms(offered);
        let answer = codec::encode_response(ApiKey::SaslHandshake, version, correlation, &resp);
        let Ok(answer) = answer else {
            return fail(None, "cannot encode the SaslHandshake response");
        };
        let Some(mechanism) = chosen else {
            let why = format!("SASL mechanism {wanted:?} is not enabled on this listener");
            return fail(Some(answer), &why);
        };
        let previous = match std::mem::replace(&mut self.state, State::Start) {
            State::Authenticated { principal, .. } => Some(principal),
            _ => None,
        };
        self.state = State::Handshaken {
            mechanism,
            previous,
        };
        Gate::Answer(answer)
    }

    fn authenticate(&mut self, frame: &Bytes, version: i16, correlation: i32, now: i64) -> Gate {
        let Some(req) = decode::<SaslAuthenticateRequest>(frame) else {
            return fail(None, "malformed SaslAuthenticate request");
        };
        let token = &req.auth_bytes;
        let (progress, previous) = match std::mem::replace(&mut self.state, State::Start) {
            State::Handshaken {
                mechanism: Mechanism::Plain,
                previous,
            } => (
                plain(token, &self.config)
                    .map(|u| Progress::Done(u, Vec::new(), None))
                    .map_err(Cow::from),
                previous,
            ),
            State::Handshaken {
                mechanism: Mechanism::OAuthBearer,
                previous,
            } => (self.oauth(token, &previous, now), previous),
            State::OAuthRefused { error, previous } => (Err(Cow::from(error)), previous),
            State::Handshaken {
                mechanism: Mechanism::Scram(m),
                previous,
            } => {
                let mut server = Box::new(ScramServer::new(m, self.scram.nonce()));
                let credential = ScramServer::first_user(token)
                    .ok()
                    .and_then(|user| self.scram.credential(&user, m));
                let answer = server.first(token, credential);
                if answer.is_ok() {
                    self.state = State::ScramFinal {
                        server,
                        previous: previous.clone(),
                    };
                }
                (answer.map(Progress::Continue).map_err(Cow::from), previous)
            }
            State::ScramFinal {
                mut server,
                previous,
            } => (
                server
                    .last(token)
                    .map(|(u, b)| Progress::Done(u, b, None))
                    .map_err(Cow::from),
                previous,
            ),
            _ => return fail(None, "SaslAuthenticate out of order"),
        };
        let progress = progress.and_then(|p| match (p, &previous) {
            (Progress::Done(user, ..), Some(p)) if *p != user => Err(Cow::from(
                "Authentication failed: re-authentication must be as the same user",
            )),
            (p, _) => Ok(p),
        });
        self.answer(progress, version, correlation, now)
    }

    /// OAUTHBEARER's first message: logged in, or a refused token's JSON error sent as a
    /// challenge (RFC 7628), or a malformed message failing at once.
    fn oauth(
        &mut self,
        token: &[u8],
        previous: &Option<String>,
        now: i64,
    ) -> Result<Progress, Failure> {
        match oauth::authenticate(&self.config.oauth, token, now) {
            Ok(v) => Ok(Progress::Done(v.principal, Vec::new(), Some(v.expires_ms))),
            Err(oauth::Refused::Message(m)) => Err(Cow::from(m)),
            Err(oauth::Refused::Token(error)) => {
                let challenge = error.clone().into_bytes();
                self.state = State::OAuthRefused {
                    error,
                    previous: previous.clone(),
                };
                Ok(Progress::Continue(challenge))
            }
        }
    }

    /// Encodes the SaslAuthenticate answer and moves to the state it leads to.
    fn answer(
        &mut self,
        progress: Result<Progress, Failure>,
        version: i16,
        correlation: i32,
        now: i64,
    ) -> Gate {
        // KIP-368: with re-authentication on, a session also ends with its credential (an
        // OAUTHBEARER token's expiry), as in Kafka.
        let mut lifetime = self.config.reauth_ms;
        let mut resp = SaslAuthenticateResponse::default();
        match &progress {
            Ok(Progress::Continue(bytes)) => resp.auth_bytes = Bytes::from(bytes.clone()),
            Ok(Progress::Done(_, bytes, expires)) => {
                if let (true, Some(expires)) = (lifetime > 0, expires) {
                    lifetime = lifetime.min(expires.saturating_sub(now)).max(1);
                }
                resp.auth_bytes = Bytes::from(bytes.clone());
                resp.session_lifetime_ms = lifetime;
            }
            Err(message) => {
                resp.error_code = SASL_AUTHENTICATION_FAILED;
                resp.error_message = Some(StrBytes::from_string(message.to_string()));
            }
        }
        let answer = codec::encode_response(ApiKey::SaslAuthenticate, version, correlation, &resp);
        let Ok(answer) = answer else {
            return fail(None, "cannot encode the SaslAuthenticate response");
        };
        match progress {
            Ok(Progress::Continue(_)) => Gate::Answer(answer),
            Ok(Progress::Done(principal, ..)) => {
                self.state = State::Authenticated {
                    principal,
                    expires_ms: (lifetime > 0).then(|| now.saturating_add(lifetime)),
                };
                Gate::Answer(answer)
            }
            Err(message) => fail(Some(answer), &message),
        }
    }
}

/// SCRAM credentials from this node's metadata image (UserScramCredentialRecords), nonces from
/// the system's random source.
#[derive(Debug)]
pub struct ImageScram(pub Arc<shale_raft::Controller>);

impl ScramSource for ImageScram {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let image = self.0.image();
        let r = image
            .scram
            .get(&(user.to_string(), mechanism.kafka_type()))?;
        Some(ScramCredential {
            salt: r.salt.clone(),
            stored_key: r.stored_key.clone(),
            server_key: r.server_key.clone(),
            iterations: u32::try_from(r.iterations).unwrap_or(0),
        })
    }

    fn nonce(&self) -> String {
        use base64::Engine;
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 24];
        // getrandom(2) does not fail on Linux once the pool is initialised; a failure would
        // only make this nonce guessable, not the password.
        let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// The answer to SaslHandshake or SaslAuthenticate on a listener without SASL.
pub fn illegal_state(api: ApiKey, version: i16, correlation: i32) -> Option<Bytes> {
    match api {
        ApiKey::SaslHandshake => {
            let resp = SaslHandshakeResponse::default().with_error_code(ILLEGAL_SASL_STATE);
            codec::encode_response(api, version, correlation, &resp).ok()
        }
        ApiKey::SaslAuthenticate => {
            let resp = SaslAuthenticateResponse::default()
                .with_error_code(ILLEGAL_SASL_STATE)
                .with_error_message(Some(StrBytes::from_static_str(
                    "this listener does not use SASL",
                )));
            codec::encode_response(api, version, correlation, &resp).ok()
        }
        _ => None,
    }
}

fn fail(answer: Option<Bytes>, reason: &str) -> Gate {
    Gate::Fail {
        answer,
        reason: reason.to_string(),
    }
}

fn decode<R: Decodable>(frame: &Bytes) -> Option<R> {
    let (header, mut body) = codec::split_request_header(frame).ok()?;
    R::decode(&mut body, header.api_version).ok()
}

/// RFC 4616: `authzid NUL authcid NUL passwd`; the authorization id, when given, must be the
/// user's own (Kafka's rule). Returns the user.
fn plain(token: &[u8], config: &SaslConfig) -> Result<String, &'static str> {
    let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
    let [authzid, user, password] = parts[..] else {
        return Err("Authentication failed: invalid SASL/PLAIN response: expected 3 tokens");
    };
    let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_string);
    let (Ok(authzid), Ok(user)) = (text(authzid), text(user)) else {
        return Err("Authentication failed: invalid SASL/PLAIN response: not UTF-8");
    };
    if user.is_empty() {
        return Err("Authentication failed: username not specified");
    }
    if password.is_empty() {
        return Err("Authentication failed: password not specified");
    }
    if !authzid.is_empty() && authzid != user {
        return Err(
            "Authentication failed: Client requested an authorization id that is \
                    different from username",
        );
    }
    match config.plain_users.get(&user) {
        Some(expected) if same(expected.as_bytes(), password) => Ok(user),
        _ => Err("Authentication failed: Invalid username or password"),
    }
}

/// Compares without stopping at the first difference (no timing hint of how much matched).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "sasl_test.rs"]
mod tests;
