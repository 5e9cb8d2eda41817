//! Well-known ids of the metadata log. Their text form is Kafka's UUID text
//! ([`shale_common::kafka_uuid`]); the metadata topic id prints as `AAAAAAAAAAAAAAAAAAAAAQ`.

use uuid::Uuid;

/// The metadata topic's id, UUID 0/1.
pub const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

#[cfg(test)]
mod tests {
    use super::*;
    use shale_common::kafka_uuid;

    #[test]
    fn metadata_topic_id_string() {
        assert_eq!(
            kafka_uuid::encode(&METADATA_TOPIC_ID),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
    }
}
