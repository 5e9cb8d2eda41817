//! EnvelopeRequest (api key 58), as Kafka's brokers forward a client's admin request to the
//! active controller: the client's whole request frame, its principal (Kafka's
//! DefaultPrincipalData: a version, then the type, name and token flag) and its address, so the
//! controller authorizes the client, not the forwarding broker.

use std::net::IpAddr;

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use shale_protocol::kafka_protocol::messages::{
    DefaultPrincipalData, EnvelopeRequest, EnvelopeResponse,
};
use shale_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::acl::USER_TYPE;

/// The only version of Envelope and of DefaultPrincipalData.
pub const VERSION: i16 = 0;

/// Who sent a forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The principal's name (type `User`).
    pub principal: String,
    /// The client's address.
    pub address: IpAddr,
}

/// The Envelope body for the client request `frame` (header and body, no size prefix).
pub fn request(frame: &[u8], client: &Client) -> anyhow::Result<BytesMut> {
    let principal = DefaultPrincipalData::default()
        .with_type(StrBytes::from_static_str(USER_TYPE))
        .with_name(StrBytes::from_string(client.principal.clone()));
    let mut serialized = BytesMut::new();
    serialized.put_i16(VERSION);
    principal.encode(&mut serialized, VERSION)?;
    let address = match client.address.to_canonical() {
        IpAddr::V4(v4) => Bytes::copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => Bytes::copy_from_slice(&v6.octets()),
    };
    let envelope = EnvelopeRequest::default()
        .with_request_data(Bytes::copy_from_slice(frame))
        .with_request_principal(Some(serialized.freeze()))
        .with_client_host_address(address);
    let mut body = BytesMut::new();
    envelope.encode(&mut body, VERSION)?;
    Ok(body)
}

/// The inner request frame and its client, from an Envelope body.
pub fn open(mut body: Bytes) -> anyhow::Result<(Bytes, Client)> {
    let envelope = EnvelopeRequest::decode(&mut body, VERSION)?;
    let mut principal = envelope
        .request_principal
        .context("an envelope without a principal")?;
    anyhow::ensure!(principal.remaining() >= 2, "truncated principal");
    let version = principal.get_i16();
    anyhow::ensure!(version == VERSION, "principal data version {version}");
    let data = DefaultPrincipalData::decode(&mut principal, VERSION)?;
    anyhow::ensure!(
        data._type.as_str() == USER_TYPE,
        "principal type {}",
        data._type.as_str()
    );
    let raw = &envelope.client_host_address[..];
    let address = match raw.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(raw)?),
        16 => IpAddr::from(<[u8; 16]>::try_from(raw)?),
        n => anyhow::bail!("a client address of {n} bytes"),
    };
    let client = Client {
        principal: data.name.to_string(),
        address,
    };
    Ok((envelope.request_data, client))
}

/// The Envelope response body carrying `response` (the inner response frame, no size prefix),
/// or only an error code.
pub fn response(inner: Result<Bytes, i16>) -> anyhow::Result<BytesMut> {
    let answer = match inner {
        Ok(frame) => EnvelopeResponse::default().with_response_data(Some(frame)),
        Err(code) => EnvelopeResponse::default().with_error_code(code),
    };
    let mut body = BytesMut::new();
    answer.encode(&mut body, VERSION)?;
    Ok(body)
}

/// The inner response frame of an Envelope response body.
pub fn unwrap_response(mut body: Bytes) -> anyhow::Result<Bytes> {
    let answer = EnvelopeResponse::decode(&mut body, VERSION)?;
    anyhow::ensure!(
        answer.error_code == 0,
        "the controller refused the envelope (error {})",
        answer.error_code
    );
    answer
        .response_data
        .context("an envelope response without data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_its_client() {
        let client = Client {
            principal: "CN=alice,O=example".into(),
            address: "::ffff:10.1.2.3".parse().unwrap(),
        };
        let body = request(b"frame", &client).unwrap().freeze();
        let (frame, opened) = open(body).unwrap();
        assert_eq!(&frame[..], b"frame");
        assert_eq!(opened.principal, client.principal);
        assert_eq!(opened.address, "10.1.2.3".parse::<IpAddr>().unwrap());
        let answer = response(Ok(Bytes::from_static(b"answer")))
            .unwrap()
            .freeze();
        assert_eq!(&unwrap_response(answer).unwrap()[..], b"answer");
        let refused = response(Err(31)).unwrap().freeze();
        assert!(unwrap_response(refused).is_err());
        assert!(
            open(Bytes::from_static(&[1, 2])).is_err(),
            "garbage is an error"
        );
    }
}
