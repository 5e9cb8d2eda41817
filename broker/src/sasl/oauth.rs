//! SASL/OAUTHBEARER (RFC 7628) with Kafka's unsecured JWS validator — the one a Kafka broker
//! uses when no `sasl.server.callback.handler.class` is set, for development and tests: the
//! token is an unsigned JWT (`alg: none`) whose claims are checked, never its origin.
//!
//! The client's first message is `n,[a=authzid],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`.
//! The token must carry the principal claim (`sub`, or `unsecuredValidatorPrincipalClaimName`)
//! as a string and `exp`; `iat`, when present, must not be in the future and must precede
//! `exp`; `unsecuredValidatorRequiredScope` (space-separated) must be in the scope claim
//! (`scope`: a space-separated string or a list), all with
//! `unsecuredValidatorAllowableClockSkewMs` of slack. A refused token is answered with RFC
//! 7628's JSON error, which the client acknowledges with `\x01` before the login fails, as in
//! Kafka. Extensions are accepted and ignored, as Kafka's unsecured handler does.

use base64::Engine;
use serde_json::{Map, Value};

/// The validator's JAAS options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsecuredValidator {
    /// `unsecuredValidatorPrincipalClaimName` (default `sub`).
    pub principal_claim: String,
    /// `unsecuredValidatorScopeClaimName` (default `scope`).
    pub scope_claim: String,
    /// `unsecuredValidatorRequiredScope`, split on spaces.
    pub required_scope: Vec<String>,
    /// `unsecuredValidatorAllowableClockSkewMs`.
    pub clock_skew_ms: i64,
}

impl Default for UnsecuredValidator {
    fn default() -> Self {
        UnsecuredValidator {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            clock_skew_ms: 0,
        }
    }
}

/// A token accepted: its principal and when it expires (ms since the epoch).
#[derive(Debug, PartialEq, Eq)]
pub struct Validated {
    pub principal: String,
    pub expires_ms: i64,
}

/// Why a login is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The first message is malformed or names another authorization id: fails at once.
    Message(&'static str),
    /// The token is refused: this JSON error (RFC 7628 §3.2.2) answers first.
    Token(String),
}

/// Checks a client's first message at `now_ms`.
pub fn authenticate(
    v: &UnsecuredValidator,
    message: &[u8],
    now_ms: i64,
) -> Result<Validated, Refused> {
    let (authzid, token) = initial_response(message).map_err(Refused::Message)?;
    let validated = validate(v, token, now_ms).map_err(|scope| {
        let status = if scope.is_some() {
            "insufficient_scope"
        } else {
            "invalid_token"
        };
        let mut error = serde_json::json!({ "status": status });
        if let Some(scope) = scope {
            error["scope"] = Value::String(scope);
        }
        Refused::Token(error.to_string())
    })?;
    if !authzid.is_empty() && authzid != validated.principal {
        return Err(Refused::Message(
            "Authentication failed: Client requested an authorization id that is different \
             from the token's principal name",
        ));
    }
    Ok(validated)
}

/// (authorization id, token) of `n,[a=authzid],\x01auth=Bearer <token>\x01…\x01`.
fn initial_response(message: &[u8]) -> Result<(&str, &str), &'static str> {
    const MALFORMED: &str = "Authentication failed: invalid OAUTHBEARER client first message";
    let text = std::str::from_utf8(message).map_err(|_| MALFORMED)?;
    let rest = text.strip_prefix("n,").ok_or(MALFORMED)?;
    let (gs2_authzid, pairs) = rest.split_once(',').ok_or(MALFORMED)?;
    let authzid = match gs2_authzid {
        "" => "",
        a => a.strip_prefix("a=").ok_or(MALFORMED)?,
    };
    let pairs = pairs.strip_prefix('\x01').ok_or(MALFORMED)?;
    let pairs = pairs.strip_suffix("\x01\x01").ok_or(MALFORMED)?;
    let mut token = None;
    for pair in pairs.split('\x01') {
        let (key, value) = pair.split_once('=').ok_or(MALFORMED)?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(MALFORMED);
        }
        if key == "auth" {
            let (scheme, value) = value.split_once(' ').ok_or(MALFORMED)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(MALFORMED);
            }
            token = Some(value.trim_start_matches(' '));
        }
    }
    Ok((authzid, token.filter(|t| !t.is_empty()).ok_or(MALFORMED)?))
}

/// The token's principal and expiry; `Err(Some(scope))` when a required scope is missing,
/// `Err(None)` for any other fault.
fn validate(v: &UnsecuredValidator, token: &str, now: i64) -> Result<Validated, Option<String>> {
    let (header, claims) = decode_unsecured(token).ok_or(None)?;
    if header.get("alg").and_then(Value::as_str) != Some("none") {
        return Err(None);
    }
    let principal = claims
        .get(&v.principal_claim)
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or(None)?;
    let ms = |claim: &str| match claims.get(claim) {
        None => Ok(None),
        Some(n) => n
            .as_f64()
            .map(|s| Some((s * 1000.0).round() as i64))
            .ok_or(None),
    };
    let issued = ms("iat")?;
    let expires = ms("exp")?.ok_or(None)?;
    if issued.is_some_and(|iat| iat > now + v.clock_skew_ms) || now > expires + v.clock_skew_ms {
        return Err(None);
    }
    if issued.is_some_and(|iat| expires <= iat) {
        return Err(None);
    }
    let granted: Vec<&str> = match claims.get(&v.scope_claim) {
        None => Vec::new(),
        Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(None),
    };
    if !v
        .required_scope
        .iter()
        .all(|s| granted.contains(&s.as_str()))
    {
        return Err(Some(v.required_scope.join(" ")));
    }
    Ok(Validated {
        principal: principal.to_string(),
        expires_ms: expires,
    })
}

/// Header and claims of `header.claims.` (base64url JSON objects, an empty signature).
fn decode_unsecured(token: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut parts = token.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !signature.is_empty() {
        return None;
    }
    let object = |part: &str| -> Option<Map<String, Value>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    Some((object(header)?, object(claims)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn message(claims: &str) -> Vec<u8> {
        let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims));
        format!("n,,\x01auth=Bearer {token}\x01traceId=abc\x01\x01").into_bytes()
    }

    #[test]
    fn an_unsecured_token_logs_in_as_its_subject_until_it_expires() {
        let v = UnsecuredValidator::default();
        let m = message(r#"{"sub":"alice","iat":1000,"exp":1060.5}"#);
        let ok = authenticate(&v, &m, 1_030_000).unwrap();
        assert_eq!(ok.principal, "alice");
        assert_eq!(ok.expires_ms, 1_060_500);
        let expired = authenticate(&v, &m, 1_061_000).unwrap_err();
        assert_eq!(
            expired,
            Refused::Token(r#"{"status":"invalid_token"}"#.into())
        );
        let skewed = UnsecuredValidator {
            clock_skew_ms: 1000,
            ..v.clone()
        };
        assert!(authenticate(&skewed, &m, 1_061_000).is_ok());
        // Issued in the future, no exp, no subject, a signature, another alg: refused.
        for claims in [
            r#"{"sub":"alice","iat":2000,"exp":3000}"#,
            r#"{"sub":"alice"}"#,
            r#"{"exp":3000}"#,
            r#"{"sub":"alice","iat":1000,"exp":900}"#,
        ] {
            let refused = authenticate(&v, &message(claims), 1_030_000);
            assert!(matches!(refused, Err(Refused::Token(_))), "{claims}");
        }
        let signed = format!(
            "n,,\x01auth=Bearer {}.{}.c2ln\x01\x01",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"sub":"a","exp":3000}"#)
        );
        assert!(matches!(
            authenticate(&v, signed.as_bytes(), 0),
            Err(Refused::Token(_))
        ));
    }

    #[test]
    fn scopes_claims_and_the_authorization_id() {
        let v = UnsecuredValidator {
            principal_claim: "client".into(),
            scope_claim: "scp".into(),
            required_scope: vec!["kafka".into(), "write".into()],
            clock_skew_ms: 0,
        };
        let ok = message(r#"{"client":"svc","exp":10,"scp":["write","kafka","x"]}"#);
        assert_eq!(authenticate(&v, &ok, 0).unwrap().principal, "svc");
        let spaced = message(r#"{"client":"svc","exp":10,"scp":"kafka write"}"#);
        assert!(authenticate(&v, &spaced, 0).is_ok());
        let missing = message(r#"{"client":"svc","exp":10,"scp":"kafka"}"#);
        let Err(Refused::Token(json)) = authenticate(&v, &missing, 0) else {
            panic!("a missing scope is a token error");
        };
        let json: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "insufficient_scope", "scope": "kafka write"})
        );
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"client":"svc","exp":10,"scp":"kafka write"}"#)
        );
        let other = format!("n,a=bob,\x01auth=Bearer {token}\x01\x01");
        assert!(matches!(
            authenticate(&v, other.as_bytes(), 0),
            Err(Refused::Message(_))
        ));
        let same = format!("n,a=svc,\x01auth=Bearer {token}\x01\x01");
        assert!(authenticate(&v, same.as_bytes(), 0).is_ok());
    }

    #[test]
    fn malformed_first_messages_fail_at_once() {
        let v = UnsecuredValidator::default();
        for bad in [
            &b""[..],
            b"n,,",
            b"y,,\x01auth=Bearer x..\x01\x01",
            b"n,,\x01auth=Basic abc\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01auth=Bearer a.b.\x01",
            b"n,,\x011x=2\x01auth=Bearer a.b.\x01\x01",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(authenticate(&v, bad, 0), Err(Refused::Message(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            authenticate(&v, b"n,,\x01auth=Bearer notatoken\x01\x01", 0),
            Err(Refused::Token(_))
        ));
    }
}
