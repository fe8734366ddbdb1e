//! TensorBoard event files: what `tensorboard --logdir` reads. A file is a sequence of TFRecord
//! records (a little-endian u64 length, its masked CRC-32C, the data, the data's masked CRC-32C),
//! each holding an `Event` protocol buffer (tensorflow/core/util/event.proto): first one with
//! `file_version = "brain.Event:2"`, then one `Summary` per step with a scalar per tag. The
//! protocol buffers are encoded by `prost`, the CRC by `crc32c`; only the framing is written here.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `tensorflow.Event`, with the fields written here.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`: one value per tag.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` holding a `simple_value` (a scalar), or only metadata (a plugin's
/// data, as the HParams plugin writes it).
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
}

/// `tensorflow.SummaryMetadata` with its `plugin_data`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

/// The HParams plugin's `HParamsPluginData` (tensorboard/plugins/hparams/plugin_data.proto),
/// with an experiment or a session's start.
#[derive(Clone, PartialEq, prost::Message)]
struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(oneof = "HParamsData", tags = "2, 3")]
    data: Option<HParamsData>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum HParamsData {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
}

/// `hparams.Experiment`: the hyperparameters and metrics the HParams table shows.
#[derive(Clone, PartialEq, prost::Message)]
struct Experiment {
    #[prost(string, tag = "6")]
    name: String,
    #[prost(message, repeated, tag = "4")]
    hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    metric_infos: Vec<MetricInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HParamInfo {
    #[prost(string, tag = "1")]
    name: String,
    /// `hparams.DataType`: 1 string, 3 float64.
    #[prost(int32, tag = "4")]
    data_type: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    name: Option<MetricName>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MetricName {
    #[prost(string, tag = "2")]
    tag: String,
}

/// `hparams.SessionStartInfo`: one run's hyperparameters.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: std::collections::BTreeMap<String, ProtoValue>,
    #[prost(string, tag = "4")]
    group_name: String,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

/// `google.protobuf.Value`: a number or a string.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoValue {
    #[prost(oneof = "Kind", tags = "2, 3")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
}

/// A hyperparameter's value: a number or a string.
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
}

impl HParam {
    fn proto(&self) -> ProtoValue {
        let kind = match self {
            HParam::Number(x) => Kind::Number(*x),
            HParam::Text(s) => Kind::Text(s.clone()),
        };
        ProtoValue { kind: Some(kind) }
    }
}

/// Seconds since the Unix epoch, as event files stamp them.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// TensorFlow's masked CRC-32C of a record's length or data (`tensorflow/core/lib/hash/crc32c.h`:
/// rotate right by 15 bits, add 0xa282ead8), so that a CRC of data holding CRCs stays strong.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord record around `data`.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// An event file being appended to, in folder `dir`.
pub struct EventWriter {
    path: PathBuf,
}

impl EventWriter {
    /// Starts a new event file in `dir` (created if needed), named as TensorFlow names them
    /// (`events.out.tfevents.<seconds>.<host>.<pid>`), with its `file_version` event.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let now = now();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
        let name = format!(
            "events.out.tfevents.{}.{}.{}",
            now as u64,
            host.trim(),
            std::process::id()
        );
        let w = EventWriter { path: dir.join(name) };
        w.append(&Event {
            wall_time: now,
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        Ok(w)
    }

    /// Appends one event with a scalar for each `(tag, value)` at `step`, and flushes it to the
    /// file, so a running trial can be watched.
    pub fn scalars(&self, step: i64, values: &[(&str, f64)]) -> Result<()> {
        let wall_time = now();
        let value = values
            .iter()
            .map(|(tag, v)| SummaryValue {
                tag: tag.to_string(),
                simple_value: Some(*v as f32),
                metadata: None,
            })
            .collect();
        self.append(&Event {
            wall_time,
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }

    /// The HParams plugin's experiment: the hyperparameters `hparams` (name, an example value
    /// for its type) and the scalar tags `metrics` that the HParams table and parallel
    /// coordinates show for every run under this event file's folder.
    pub fn hparams_experiment(&self, name: &str, hparams: &[(String, HParam)], metrics: &[&str]) -> Result<()> {
        let experiment = Experiment {
            name: name.into(),
            hparam_infos: hparams
                .iter()
                .map(|(name, v)| HParamInfo {
                    name: name.clone(),
                    data_type: if matches!(v, HParam::Number(_)) { 3 } else { 1 },
                })
                .collect(),
            metric_infos: metrics
                .iter()
                .map(|tag| MetricInfo {
                    name: Some(MetricName { tag: tag.to_string() }),
                })
                .collect(),
        };
        self.hparams_summary("_hparams_/experiment", HParamsData::Experiment(experiment))
    }

    /// The HParams plugin's session start: this run's hyperparameters, in `group` (the runs of
    /// one arm, whose seeds the table averages).
    pub fn hparams_session(&self, hparams: &[(String, HParam)], group: &str) -> Result<()> {
        let info = SessionStartInfo {
            hparams: hparams.iter().map(|(k, v)| (k.clone(), v.proto())).collect(),
            group_name: group.into(),
            start_time_secs: now(),
        };
        self.hparams_summary("_hparams_/session_start_info", HParamsData::SessionStartInfo(info))
    }

    fn hparams_summary(&self, tag: &str, data: HParamsData) -> Result<()> {
        let content = prost::Message::encode_to_vec(&HParamsPluginData {
            version: 0,
            data: Some(data),
        });
        let value = SummaryValue {
            tag: tag.into(),
            simple_value: None,
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "hparams".into(),
                    content,
                }),
            }),
        };
        self.append(&Event {
            wall_time: now(),
            step: 0,
            what: Some(What::Summary(Summary { value: vec![value] })),
        })
    }

    fn append(&self, event: &Event) -> Result<()> {
        let bytes = record(&prost::Message::encode_to_vec(event));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        f.write_all(&bytes)
            .and_then(|()| f.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_as_tfrecord() {
        // CRC-32C's check value: crc32c("123456789") = 0xe3069283 (RFC 3720, appendix B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let masked = 0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8);
        assert_eq!(masked_crc(b"123456789"), masked);
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[8..12], &masked_crc(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(&r[15..], &masked_crc(b"abc").to_le_bytes());
    }
}
