//! The versioned encodings of the metadata records whose layout changes across versions or
//! carries tagged fields (RegisterBrokerRecord, PartitionRecord, PartitionChangeRecord,
//! BrokerRegistrationChangeRecord); the simple ones are written inline by
//! `MetadataRecord::encode` and read by `read_body`.

use super::*;

impl RegisterBrokerRecord {
    pub(super) fn write(&self, w: &mut FlexWriter) {
        w.i32(self.broker_id);
        if self.version >= 2 {
            w.bool(self.is_migrating_zk_broker);
        }
        w.uuid(&self.incarnation_id);
        w.i64(self.broker_epoch);
        w.struct_array(&self.end_points, |w, e| {
            w.string(&e.name);
            w.string(&e.host);
            w.u16(e.port);
            w.i16(e.security_protocol);
            w.no_tags();
        });
        w.struct_array(&self.features, |w, f| {
            w.string(&f.name);
            w.i16(f.min_supported_version);
            w.i16(f.max_supported_version);
            w.no_tags();
        });
        w.nullable_string(self.rack.as_deref());
        w.bool(self.fenced);
        if self.version >= 1 {
            w.bool(self.in_controlled_shutdown);
        }
        let mut tags = Vec::new();
        if self.version >= 3 && !self.log_dirs.is_empty() {
            tags.push((0, tagged(|w| w.uuid_array(&self.log_dirs))));
        }
        w.tags(&tags);
    }

    pub(super) fn read(r: &mut FlexReader<'_>, version: i16) -> Result<Self, RaftError> {
        let broker_id = r.i32()?;
        let is_migrating_zk_broker = if version >= 2 { r.bool()? } else { false };
        let incarnation_id = r.uuid()?;
        let broker_epoch = r.i64()?;
        let end_points = r.struct_array(|r| {
            let e = BrokerEndpoint {
                name: r.string()?,
                host: r.string()?,
                port: r.u16()?,
                security_protocol: r.i16()?,
            };
            r.skip_tags()?;
            Ok(e)
        })?;
        let features = r.struct_array(|r| {
            let f = BrokerFeature {
                name: r.string()?,
                min_supported_version: r.i16()?,
                max_supported_version: r.i16()?,
            };
            r.skip_tags()?;
            Ok(f)
        })?;
        let rack = r.nullable_string()?;
        let fenced = r.bool()?;
        let in_controlled_shutdown = if version >= 1 { r.bool()? } else { false };
        let mut log_dirs = Vec::new();
        r.tags(|tag, sub| {
            if tag == 0 && version >= 3 {
                log_dirs = sub.uuid_array()?;
                return Ok(true);
            }
            Ok(false)
        })?;
        Ok(RegisterBrokerRecord {
            version,
            broker_id,
            is_migrating_zk_broker,
            incarnation_id,
            broker_epoch,
            end_points,
            features,
            rack,
            fenced,
            in_controlled_shutdown,
            log_dirs,
        })
    }
}

impl PartitionRecord {
    pub(super) fn write(&self, w: &mut FlexWriter) {
        w.i32(self.partition_id);
        w.uuid(&self.topic_id);
        w.i32_array(&self.replicas);
        w.i32_array(&self.isr);
        w.i32_array(&self.removing_replicas);
        w.i32_array(&self.adding_replicas);
        w.i32(self.leader);
        w.i32(self.leader_epoch);
        w.i32(self.partition_epoch);
        if self.version >= 1 {
            w.uuid_array(&self.directories);
        }
        let mut tags = Vec::new();
        if self.leader_recovery_state != 0 {
            tags.push((0, tagged(|w| w.i8(self.leader_recovery_state))));
        }
        if self.version >= 2 {
            if let Some(elr) = &self.eligible_leader_replicas {
                tags.push((1, tagged(|w| w.i32_array(elr))));
            }
            if let Some(lke) = &self.last_known_elr {
                tags.push((2, tagged(|w| w.i32_array(lke))));
            }
        }
        w.tags(&tags);
    }

    pub(super) fn read(r: &mut FlexReader<'_>, version: i16) -> Result<Self, RaftError> {
        let partition_id = r.i32()?;
        let topic_id = r.uuid()?;
        let replicas = r.i32_array()?;
        let isr = r.i32_array()?;
        let removing_replicas = r.nullable_i32_array()?.unwrap_or_default();
        let adding_replicas = r.nullable_i32_array()?.unwrap_or_default();
        let leader = r.i32()?;
        let leader_epoch = r.i32()?;
        let partition_epoch = r.i32()?;
        let directories = if version >= 1 {
            r.uuid_array()?
        } else {
            Vec::new()
        };
        let mut rec = PartitionRecord {
            version,
            partition_id,
            topic_id,
            replicas,
            isr,
            removing_replicas,
            adding_replicas,
            leader,
            leader_recovery_state: 0,
            leader_epoch,
            partition_epoch,
            directories,
            eligible_leader_replicas: None,
            last_known_elr: None,
        };
        r.tags(|tag, sub| {
            match (tag, version >= 2) {
                (0, _) => rec.leader_recovery_state = sub.i8()?,
                (1, true) => rec.eligible_leader_replicas = sub.nullable_i32_array()?,
                (2, true) => rec.last_known_elr = sub.nullable_i32_array()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(rec)
    }
}

impl PartitionChangeRecord {
    pub(super) fn write(&self, w: &mut FlexWriter) {
        w.i32(self.partition_id);
        w.uuid(&self.topic_id);
        let mut tags = Vec::new();
        let arr = |v: &Vec<i32>| tagged(|w| w.i32_array(v));
        if let Some(v) = &self.isr {
            tags.push((0, arr(v)));
        }
        if self.leader != NO_LEADER_CHANGE {
            tags.push((1, tagged(|w| w.i32(self.leader))));
        }
        if let Some(v) = &self.replicas {
            tags.push((2, arr(v)));
        }
        if let Some(v) = &self.removing_replicas {
            tags.push((3, arr(v)));
        }
        if let Some(v) = &self.adding_replicas {
            tags.push((4, arr(v)));
        }
        if self.leader_recovery_state != -1 {
            tags.push((5, tagged(|w| w.i8(self.leader_recovery_state))));
        }
        if self.version >= 2 {
            if let Some(v) = &self.eligible_leader_replicas {
                tags.push((6, arr(v)));
            }
            if let Some(v) = &self.last_known_elr {
                tags.push((7, arr(v)));
            }
        }
        if self.version >= 1 {
            if let Some(v) = &self.directories {
                tags.push((8, tagged(|w| w.uuid_array(v))));
            }
        }
        w.tags(&tags);
    }

    pub(super) fn read(r: &mut FlexReader<'_>, version: i16) -> Result<Self, RaftError> {
        let partition_id = r.i32()?;
        let topic_id = r.uuid()?;
        let mut rec = PartitionChangeRecord::new(version, topic_id, partition_id);
        r.tags(|tag, sub| {
            match tag {
                0 => rec.isr = sub.nullable_i32_array()?,
                1 => rec.leader = sub.i32()?,
                2 => rec.replicas = sub.nullable_i32_array()?,
                3 => rec.removing_replicas = sub.nullable_i32_array()?,
                4 => rec.adding_replicas = sub.nullable_i32_array()?,
                5 => rec.leader_recovery_state = sub.i8()?,
                6 if version >= 2 => rec.eligible_leader_replicas = sub.nullable_i32_array()?,
                7 if version >= 2 => rec.last_known_elr = sub.nullable_i32_array()?,
                8 if version >= 1 => rec.directories = sub.nullable_uuid_array()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(rec)
    }
}

impl BrokerRegistrationChangeRecord {
    pub(super) fn write(&self, w: &mut FlexWriter) {
        w.i32(self.broker_id);
        w.i64(self.broker_epoch);
        let mut tags = Vec::new();
        if self.fenced != 0 {
            tags.push((0, tagged(|w| w.i8(self.fenced))));
        }
        if self.version >= 1 && self.in_controlled_shutdown != 0 {
            tags.push((1, tagged(|w| w.i8(self.in_controlled_shutdown))));
        }
        if self.version >= 2 && !self.log_dirs.is_empty() {
            tags.push((2, tagged(|w| w.uuid_array(&self.log_dirs))));
        }
        w.tags(&tags);
    }

    pub(super) fn read(r: &mut FlexReader<'_>, version: i16) -> Result<Self, RaftError> {
        let mut rec = BrokerRegistrationChangeRecord {
            version,
            broker_id: r.i32()?,
            broker_epoch: r.i64()?,
            fenced: 0,
            in_controlled_shutdown: 0,
            log_dirs: Vec::new(),
        };
        r.tags(|tag, sub| {
            match tag {
                0 => rec.fenced = sub.i8()?,
                1 if version >= 1 => rec.in_controlled_shutdown = sub.i8()?,
                2 if version >= 2 => rec.log_dirs = sub.uuid_array()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(rec)
    }
}
