//! The calls of MLflow's tracking REST API that the checklist needs (MLflow 2.x and 3.x,
//! `https://mlflow.org/docs/latest/rest-api.html`): experiments by name, runs, batched metrics,
//! params and tags, run status, and artifact upload through the tracking server's artifact proxy
//! (`mlflow server` serves artifacts by default).
use crate::executor::http;
use darkmagic_base::error::{Error, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// MLflow's per-request limits of `runs/log-batch`: 1000 entries in all, 100 params, 100 tags
/// (`BATCH_PARAMS` serves both).
const BATCH_ENTRIES: usize = 1000;
const BATCH_PARAMS: usize = 100;

/// A tracking server at `base` (`http://host:port`, no trailing slash).
#[derive(Clone, Debug)]
pub struct Client {
    pub base: String,
}

/// A run as created: its ID and where its artifacts go.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub id: String,
    pub artifact_uri: String,
}

/// The most pages of 1,000 runs [`Client::runs`] reads.
const MAX_PAGES: usize = 1000;

/// A run as `runs/search` lists it: its ID, artifact location, start (ms) and tags.
#[derive(Debug)]
pub struct Found {
    pub id: String,
    pub artifact_uri: String,
    pub start_time: u64,
    pub tags: BTreeMap<String, String>,
}

impl Found {
    /// One run of a `runs/search` answer; its start is 0 where the server gives none (MLflow
    /// writes 64-bit integers as numbers or, in protobuf's JSON, as strings).
    fn of(run: &Value, base: &str) -> Result<Found> {
        let start = &run["info"]["start_time"];
        let tags = run["data"]["tags"].as_array().into_iter().flatten();
        Ok(Found {
            id: text(&run["info"]["run_id"], base, "run_id")?,
            artifact_uri: text(&run["info"]["artifact_uri"], base, "artifact_uri")?,
            start_time: start.as_u64().or_else(|| start.as_str()?.parse().ok()).unwrap_or(0),
            tags: tags
                .filter_map(|t| Some((t["key"].as_str()?.to_string(), t["value"].as_str()?.to_string())))
                .collect(),
        })
    }
}

/// One metric value at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub step: usize,
    pub timestamp_ms: u64,
}

impl Metric {
    /// `key` = `value` at `step`, stamped `timestamp_ms`.
    pub fn at(key: &str, value: f64, step: usize, timestamp_ms: u64) -> Metric {
        Metric {
            key: key.to_string(),
            value,
            step,
            timestamp_ms,
        }
    }
}

/// One spelling per server, so that `mlflow.json` knows it again: the host in lower case,
/// `localhost` as `127.0.0.1`, the port without leading zeros, no trailing `/`.
fn canonical(uri: &str) -> String {
    let rest = uri.trim_end_matches('/').trim_start_matches("http://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (
            h,
            p.trim_start_matches('0')
                .parse::<u32>()
                .map_or(p.to_string(), |n| format!(":{n}")),
        ),
        _ => (authority, String::new()),
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host
    };
    format!("http://{host}{port}{path}")
}

impl Client {
    /// A client of the server at `uri`; only `http://` addresses are supported.
    pub fn new(uri: &str) -> Result<Client> {
        // Credentials first: an address refused for another reason is printed too.
        if darkmagic_base::uri::credentials(uri).is_some() {
            return Err(error(
                &darkmagic_base::uri::redacted(uri),
                "credentials in the address are not supported: darkmagic sends no authentication and prints the address; use a server on a trusted network without them",
            ));
        }
        if !uri.starts_with("http://") {
            return Err(error(
                uri,
                "expected an http:// address of an MLflow tracking server, e.g. http://127.0.0.1:5000",
            ));
        }
        // The address goes into each request's first line and Host header as it is.
        if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(error(
                &uri.escape_debug().to_string(),
                "an address holds no spaces or control characters",
            ));
        }
        let host = uri["http://".len()..].split(['/', ':']).next().unwrap_or("");
        if host.is_empty() {
            return Err(error(
                uri,
                "the address names no host; expected http://HOST:PORT, e.g. http://127.0.0.1:5000",
            ));
        }
        Ok(Client { base: canonical(uri) })
    }

    /// The ID of the experiment named `name`, created when the server has none. When another
    /// client creates it between the lookup and the creation (the server then answers
    /// `RESOURCE_ALREADY_EXISTS`), it is looked up again.
    pub fn experiment(&self, name: &str) -> Result<String> {
        let path = format!("experiments/get-by-name?experiment_name={}", percent_encode(name));
        let get = || self.try_call("GET", &path, None);
        match get() {
            Ok(v) => text(&v["experiment"]["experiment_id"], &self.base, "experiment_id"),
            Err(Failure::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                match self.try_call("POST", "experiments/create", Some(json!({ "name": name }))) {
                    Ok(v) => text(&v["experiment_id"], &self.base, "experiment_id"),
                    Err(Failure::Api { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => {
                        let v = get().map_err(|e| e.into_error(&self.base))?;
                        text(&v["experiment"]["experiment_id"], &self.base, "experiment_id")
                    }
                    Err(e) => Err(e.into_error(&self.base)),
                }
            }
            Err(e) => Err(e.into_error(&self.base)),
        }
    }

    /// Creates a run named `name` in `experiment`, nested under `parent` when given.
    pub fn create_run(
        &self,
        experiment: &str,
        name: &str,
        parent: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Run> {
        let mut all: Vec<Value> = tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect();
        if let Some(p) = parent {
            all.push(json!({ "key": "mlflow.parentRunId", "value": p }));
        }
        let body = json!({
            "experiment_id": experiment,
            "run_name": name,
            "start_time": now_ms(),
            "tags": all,
        });
        let v = self.call("POST", "runs/create", Some(body))?;
        Ok(Run {
            id: text(&v["run"]["info"]["run_id"], &self.base, "run_id")?,
            artifact_uri: text(&v["run"]["info"]["artifact_uri"], &self.base, "artifact_uri")?,
        })
    }

    /// Whether the server still has run `id` (false after it lost its store).
    pub fn has_run(&self, id: &str) -> Result<bool> {
        match self.try_call("GET", &format!("runs/get?run_id={}", percent_encode(id)), None) {
            Ok(_) => Ok(true),
            Err(Failure::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => Ok(false),
            Err(e) => Err(e.into_error(&self.base)),
        }
    }

    /// Logs metrics, params and tags to run `id`, in as many requests as MLflow's limits need.
    pub fn log_batch(
        &self,
        id: &str,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        let pairs = |list: &[(String, String)]| -> Vec<Value> {
            list.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect()
        };
        for (field, list) in [("params", params), ("tags", tags)] {
            for chunk in list.chunks(BATCH_PARAMS) {
                let body = json!({ "run_id": id, field: pairs(chunk) });
                self.call("POST", "runs/log-batch", Some(body))?;
            }
        }
        for chunk in metrics.chunks(BATCH_ENTRIES) {
            let list: Vec<Value> = chunk
                .iter()
                .map(|m| json!({ "key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp_ms }))
                .collect();
            self.call("POST", "runs/log-batch", Some(json!({ "run_id": id, "metrics": list })))?;
        }
        Ok(())
    }

    /// Every active run of `experiment` (page by page, at most [`MAX_PAGES`] pages: a server
    /// that hands out page tokens without end is an error, not a hang).
    pub fn runs(&self, experiment: &str) -> Result<Vec<Found>> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut body =
                json!({ "experiment_ids": [experiment], "max_results": 1000, "run_view_type": "ACTIVE_ONLY" });
            if let Some(t) = &token {
                body["page_token"] = t.clone().into();
            }
            let v = self.call("POST", "runs/search", Some(body))?;
            for run in v["runs"].as_array().into_iter().flatten() {
                found.push(Found::of(run, &self.base)?);
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
        Err(error(
            &self.base,
            &format!("runs/search of experiment {experiment} still had more pages after {MAX_PAGES}"),
        ))
    }

    /// Deletes run `id` (MLflow keeps it in its trash, out of searches and the UI's lists).
    pub fn delete_run(&self, id: &str) -> Result<()> {
        self.call("POST", "runs/delete", Some(json!({ "run_id": id })))?;
        Ok(())
    }

    /// Ends run `id` with `status` (`FINISHED`, `FAILED` or `KILLED`).
    pub fn end_run(&self, id: &str, status: &str) -> Result<()> {
        let body = json!({ "run_id": id, "status": status, "end_time": now_ms() });
        self.call("POST", "runs/update", Some(body))?;
        Ok(())
    }

    /// Uploads `body` as artifact `name` of the run whose artifacts live at `artifact_uri`.
    pub fn upload(&self, artifact_uri: &str, name: &str, body: &[u8]) -> Result<()> {
        let path = proxied_path(artifact_uri).ok_or_else(|| {
            error(
                &self.base,
                &format!(
                    "the server keeps this run's artifacts at {artifact_uri}, which only its artifact proxy can write; start it with artifact serving on (the default of `mlflow server`)"
                ),
            )
        })?;
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}/{name}", self.base);
        let (status, answer) = http::send("PUT", &url, body, "application/octet-stream", None)
            .map_err(|e| error(&self.base, &unreachable(&e)))?;
        if !(200..300).contains(&status) {
            return Err(error(
                &self.base,
                &format!("uploading {name}: HTTP {status}: {}", brief(&answer)),
            ));
        }
        Ok(())
    }

    /// One call of `/api/2.0/mlflow/<endpoint>`.
    fn call(&self, method: &str, endpoint: &str, body: Option<Value>) -> Result<Value> {
        self.try_call(method, endpoint, body)
            .map_err(|f| f.into_error(&self.base))
    }

    /// [`Client::call`], keeping MLflow's own error code when it refuses.
    fn try_call(&self, method: &str, endpoint: &str, body: Option<Value>) -> std::result::Result<Value, Failure> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let body = body.map(|b| b.to_string());
        let (status, answer) =
            http::request(method, &url, body.as_deref(), None).map_err(|e| Failure::Unreachable(unreachable(&e)))?;
        let parsed: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(parsed);
        }
        let code = parsed["error_code"].as_str().unwrap_or("").to_string();
        let message = parsed["message"]
            .as_str()
            .map_or_else(|| brief(&answer), str::to_string);
        Err(Failure::Api {
            code,
            message: format!("{endpoint}: HTTP {status}: {message}"),
        })
    }
}

/// Why a call failed: no answer, or MLflow's refusal.
enum Failure {
    Unreachable(String),
    Api { code: String, message: String },
}

impl Failure {
    fn into_error(self, base: &str) -> Error {
        match self {
            Failure::Unreachable(m) => error(base, &m),
            Failure::Api { code, message } if code.is_empty() => error(base, &message),
            Failure::Api { code, message } => error(base, &format!("{message} ({code})")),
        }
    }
}

fn error(uri: &str, message: &str) -> Error {
    Error::Tracking {
        uri: uri.to_string(),
        message: message.to_string(),
    }
}

/// The transport error, without the address that [`Error::Tracking`] already names.
fn unreachable(e: &Error) -> String {
    match e {
        Error::Service { message, .. } => format!("no answer ({message})"),
        other => other.to_string(),
    }
}

/// The start of an answer, for messages: its first line, at most 200 characters, control
/// characters escaped (a server's bytes must not drive the terminal).
fn brief(answer: &str) -> String {
    let line = answer.trim().lines().next().unwrap_or("");
    line.chars()
        .take(200)
        .map(|c| match c.is_control() {
            true => c.escape_debug().to_string(),
            false => c.to_string(),
        })
        .collect()
}

fn text(v: &Value, base: &str, field: &str) -> Result<String> {
    v.as_str().map(str::to_string).ok_or_else(|| {
        error(
            base,
            &format!("the answer has no `{field}`; is this an MLflow tracking server?"),
        )
    })
}

/// The proxy path of an `mlflow-artifacts:` URI (`mlflow-artifacts:/1/<run>/artifacts` or
/// `mlflow-artifacts://host:port/1/<run>/artifacts` -> `1/<run>/artifacts`); None for any other
/// store.
fn proxied_path(artifact_uri: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(authority) => &authority[authority.find('/')?..],
        None => rest,
    };
    let path = rest.trim_matches('/');
    let encoded: Vec<String> = path.split('/').map(percent_encode).collect();
    Some(encoded.join("/"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Milliseconds since the Unix epoch, MLflow's timestamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn one_server_has_one_spelling() {
        for spelled in [
            "http://127.0.0.1:5000",
            "http://LOCALHOST:05000/",
            "http://localhost:5000",
        ] {
            assert_eq!(canonical(spelled), "http://127.0.0.1:5000", "{spelled}");
        }
        assert_eq!(
            canonical("http://Tracking.Lab:80/mlflow/"),
            "http://tracking.lab:80/mlflow"
        );
    }

    use super::*;

    #[test]
    fn artifact_uris_of_the_proxy_become_its_paths_and_others_are_refused() {
        assert_eq!(
            proxied_path("mlflow-artifacts:/1/ab/artifacts").as_deref(),
            Some("1/ab/artifacts")
        );
        assert_eq!(
            proxied_path("mlflow-artifacts://127.0.0.1:5000/7/cd/artifacts").as_deref(),
            Some("7/cd/artifacts")
        );
        assert_eq!(proxied_path("file:///tmp/mlruns/1/ab/artifacts"), None);
        assert_eq!(proxied_path("s3://bucket/1/ab/artifacts"), None);
    }

    /// A server that answers each connection with the next of `answers` (status, JSON body) and
    /// returns the request lines it saw.
    fn scripted_server(answers: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (mut s, _) = listener.accept().unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the body its Content-Length announces.
                loop {
                    let n = s.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if req.len() >= end + 4 + len || n == 0 {
                            break;
                        }
                    }
                }
                seen.push(String::from_utf8_lossy(&req).lines().next().unwrap_or("").to_string());
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                s.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        (base, server)
    }

    #[test]
    fn an_experiment_created_by_someone_else_meanwhile_is_looked_up_again() {
        let (base, server) = scripted_server(vec![
            (
                404,
                r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"}"#,
            ),
            (400, r#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}"#),
            (200, r#"{"experiment": {"experiment_id": "7"}}"#),
        ]);
        let id = Client::new(&base).unwrap().experiment("darkmagic").unwrap();
        assert_eq!(id, "7");
        let seen = server.join().unwrap();
        assert!(
            seen[0].starts_with("GET ") && seen[1].starts_with("POST ") && seen[2].starts_with("GET "),
            "{seen:?}"
        );
        assert!(seen[1].contains("experiments/create"), "{seen:?}");
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(percent_encode("darkmagic /a b/c=d"), "darkmagic%20%2Fa%20b%2Fc%3Dd");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn an_address_without_a_host_is_refused() {
        for uri in ["http://", "http:///api", "http://:5000"] {
            let e = Client::new(uri).unwrap_err().to_string();
            assert!(e.contains("names no host"), "{uri}: {e}");
        }
    }

    #[test]
    fn only_http_addresses_are_taken() {
        let e = Client::new("https://mlflow.example.com").unwrap_err().to_string();
        assert!(e.contains("https://mlflow.example.com") && e.contains("http://"), "{e}");
        assert_eq!(
            Client::new("http://127.0.0.1:5000/").unwrap().base,
            "http://127.0.0.1:5000"
        );
        let e = Client::new("http://127.0.0.1:5000\r\nX-Injected: 1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no spaces or control characters") && !e.contains('\r'),
            "{e}"
        );
        // Credentials are refused, and the password never printed.
        let e = Client::new("http://alice:s3cretPW@127.0.0.1:15001")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alice:***@127.0.0.1:15001") && e.contains("credentials"),
            "{e}"
        );
        assert!(!e.contains("s3cretPW"), "{e}");
    }
}
