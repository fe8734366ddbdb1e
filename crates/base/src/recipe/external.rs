//! `[external]`: a trainer of the user's own, run as one trial, and where its metric is read.
use super::*;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// An external trainer: its command line, the baseline's arguments, and where its metric is.
///
/// Placeholders in `command`, `args` and `env` values: `{run_dir}` (the trial's run directory,
/// also the command's working directory), `{seed}`, `{epochs}` (`train.epochs`), `{data}`
/// (`data.path`) and `{threads}` (`train.threads`). The command runs in the run directory;
/// relative paths in `command` (those with a `/`) and `{data}` are taken from where darkmagic
/// runs, as darkmagic's own `data.path` is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalConfig {
    /// The program and its fixed arguments, e.g. `["/usr/bin/python3", "/src/train.py", "{data}"]`.
    pub command: Vec<String>,
    /// The baseline's flags: `"--lr" = 0.1` gives `--lr 0.1`, `true` a bare flag, `false`
    /// leaves it out, an array several values. Checklist variants change these.
    #[serde(default)]
    pub args: toml::Table,
    /// Environment variables of the trainer (`PYTHONUNBUFFERED=1` and, from `train.threads`,
    /// `OMP_NUM_THREADS` are set unless given here).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    pub metric: MetricSource,
    /// Seconds after which a trial is killed and recorded as failed; 0 = no limit.
    #[serde(default)]
    pub timeout: f64,
}

/// Where an external trainer's metric is read once it exits. Exactly one of `csv`, `json` and
/// `regex`; the value is multiplied by `scale`, and higher must be better (a loss: `scale = -1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSource {
    /// A CSV file with a header row (path relative to the run dir, placeholders allowed): the
    /// column `key` of the last row, or of the best with `row = "best"`. Every row becomes an
    /// epoch of the per-epoch curves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// A JSON file (relative to the run dir): the number at the dotted `key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// The column (`csv`) or dotted key (`json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A regular expression over the trainer's output (stdout and stderr, line by line): its
    /// first capture group in the last line that matches, e.g. `"top-1 ([0-9.]+)"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default)]
    pub row: MetricRow,
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

impl MetricSource {
    /// The metric files named (`csv`, `json`), each as its recipe key, the text as written and
    /// its path relative to the run dir (a leading `{run_dir}/` dropped).
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &str, &str)> {
        [("external.metric.csv", &self.csv), ("external.metric.json", &self.json)]
            .into_iter()
            .filter_map(|(key, file)| {
                let file = file.as_deref()?;
                Some((key, file, file.strip_prefix("{run_dir}/").unwrap_or(file)))
            })
    }
}

/// Which row of a metric CSV counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricRow {
    #[default]
    Last,
    Best,
}

/// The compiled `external.metric.regex`, with a size limit on the compiled program: matching
/// time grows with it, and `(?:a{0,100}){100}` took minutes on one line.
pub fn metric_regex(pattern: &str) -> std::result::Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::RegexBuilder::new(pattern).size_limit(1 << 16).build()
}

/// The rules of an `[external]` section: a command, flags with scalar values, exactly one
/// metric source (with its key, or a regular expression with a capture group).
impl ExternalConfig {
    pub fn validate(&self) -> Result<()> {
        let e = self;
        if e.command.is_empty() {
            return Err(Error::recipe(
                "external.command",
                "empty; expected the program and its arguments, e.g. [\"/usr/bin/python3\", \"/src/train.py\"]",
            ));
        }
        e.validate_strings()?;
        for (flag, value) in &e.args {
            let key = format!("external.args.{flag}");
            if !flag.starts_with('-') {
                return Err(Error::recipe(
                    key,
                    "not a flag; expected a name starting with `-`, e.g. \"--lr\"",
                ));
            }
            let scalar = |v: &toml::Value| !matches!(v, toml::Value::Table(_) | toml::Value::Array(_));
            let ok = match value {
                toml::Value::Array(items) => items.iter().all(scalar),
                v => scalar(v),
            };
            if !ok {
                return Err(Error::recipe(
                    key,
                    "expected a string, number or boolean, or an array of them",
                ));
            }
        }
        let m = &e.metric;
        let sources = [m.csv.is_some(), m.json.is_some(), m.regex.is_some()];
        if sources.iter().filter(|&&s| s).count() != 1 {
            return Err(Error::recipe(
                "external.metric",
                "expected exactly one of `csv` (a file and its column), `json` (a file and its key) or `regex` (over the output)",
            ));
        }
        for (key, file, rel) in m.files() {
            let path = Path::new(rel);
            if path.file_name().is_none() {
                return Err(Error::recipe(
                    key,
                    format!("`{file}`: expected the name of a file the trainer writes"),
                ));
            }
            if path.is_absolute() || path.components().any(|c| c == std::path::Component::ParentDir) {
                // Each trial reads its own metric file; one elsewhere would be shared (or secret).
                return Err(Error::recipe(
                    key,
                    format!("`{file}` must name a file inside the run dir (relative to it, without `..`)"),
                ));
            }
        }
        if (m.csv.is_some() || m.json.is_some()) && m.key.is_none() {
            return Err(Error::recipe(
                "external.metric.key",
                "required with `csv` (the column) and `json` (the dotted key)",
            ));
        }
        if let Some(r) = &m.regex {
            let re = metric_regex(r).map_err(|e| Error::recipe("external.metric.regex", e.to_string()))?;
            if re.captures_len() < 2 {
                return Err(Error::recipe(
                    "external.metric.regex",
                    "has no capture group; put the number in parentheses, e.g. \"top-1 ([0-9.]+)\"",
                ));
            }
        }
        check(
            "external.metric.scale",
            m.scale,
            m.scale.is_finite() && m.scale != 0.0,
            "a finite number other than 0",
        )?;
        check(
            "external.timeout",
            e.timeout,
            e.timeout.is_finite() && e.timeout >= 0.0,
            ">= 0 seconds",
        )
    }

    /// The strings handed to the trainer's process: no NUL byte anywhere (no argument or
    /// variable can hold one), and environment names of letters, digits and `_` not starting
    /// with a digit (what a shell and `os.environ` can name).
    fn validate_strings(&self) -> Result<()> {
        let nul = |key: String, s: &str| {
            if s.contains('\0') {
                Err(Error::recipe(
                    key,
                    "holds a NUL byte, which no argument or variable can pass",
                ))
            } else {
                Ok(())
            }
        };
        for (i, c) in self.command.iter().enumerate() {
            nul(format!("external.command[{i}]"), c)?;
        }
        for (flag, value) in &self.args {
            let key = format!("external.args.{flag}");
            nul(key.clone(), flag)?;
            let strings: Vec<&toml::Value> = match value {
                toml::Value::Array(items) => items.iter().collect(),
                v => vec![v],
            };
            for s in strings.iter().filter_map(|v| v.as_str()) {
                nul(key.clone(), s)?;
            }
        }
        for (name, value) in &self.env {
            let key = format!("external.env.{name}");
            let portable = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !portable {
                return Err(Error::recipe(
                    key,
                    "not a variable name; expected letters, digits and `_`, not starting with a digit",
                ));
            }
            nul(key, value)?;
        }
        Ok(())
    }
}
