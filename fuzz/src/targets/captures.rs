//! Request frames captured from real clients (librdkafka through confluent-kafka, kafka-python)
//! talking to a Shale broker, checked in as hex in `fuzz/seeds/client_requests.hex`: one frame
//! (header + body, no size prefix) per line, `#` lines are comments.

use kafka_protocol::messages::ApiKey;

const CAPTURES: &str = include_str!("../../seeds/client_requests.hex");

/// Every captured frame.
pub fn all_frames() -> Vec<Vec<u8>> {
    CAPTURES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(super::unhex)
        .filter(|f| f.len() >= 4)
        .collect()
}

/// The captured frames of `key`.
pub fn frames_for(key: ApiKey) -> Vec<Vec<u8>> {
    all_frames()
        .into_iter()
        .filter(|f| i16::from_be_bytes([f[0], f[1]]) == key as i16)
        .collect()
}
