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

/// `tensorflow.Summary.Value` holding a `simple_value` (a scalar).
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
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
        let wall_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let value = values
            .iter()
            .map(|(tag, v)| SummaryValue {
                tag: tag.to_string(),
                simple_value: Some(*v as f32),
            })
            .collect();
        self.append(&Event {
            wall_time,
            step,
            what: Some(What::Summary(Summary { value })),
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
