//! The Ray executor: each trial is a Ray job submitted through the Ray Jobs REST API
//! (`POST /api/jobs/` with the `darkmagic train --run-dir D --resume` entrypoint and its CPUs
//! and GPUs), polled with `GET /api/jobs/{id}` until SUCCEEDED, FAILED or STOPPED; the job's logs
//! (`GET /api/jobs/{id}/logs`) are saved as `ray.log` in its run dir. Trials without a final
//! result are resubmitted, resuming from their checkpoints, up to `attempts` submissions.
//!
//! Ray's token authentication (Ray >= 2.52, `RAY_AUTH_MODE=token`): every request carries
//! `Authorization: Bearer <token>` when a token is found, the way Ray's own clients find it
//! (`--ray-token-file`, then `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`). The
//! token is kept in a [`Token`], which never prints it.
use super::{Executor, Job, Unfinished, http, shell_quote, with_retries};
use darkmagic_base::error::{Error, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Ray authentication token. Its `Debug` and `Display` say `<redacted>`, so no log, error or
/// report can show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Token {
    /// A token as an HTTP header value: visible ASCII only (a CR or LF would start another
    /// header of the request). `source` names where it came from; the token is never shown.
    fn checked(token: &str, source: &str) -> Result<Token> {
        if token.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Token(token.to_string()))
        } else {
            Err(Error::flag(
                "--ray-token-file",
                format!("the token in {source} holds a character that is not visible ASCII (a line break or space?)"),
            ))
        }
    }

    /// The token to send: from `file` when given, else from `RAY_AUTH_TOKEN`, the file named by
    /// `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`, as Ray looks for it; None when there is
    /// none (a cluster without token authentication).
    pub fn find(file: Option<&Path>) -> Result<Option<Token>> {
        let read = |path: &Path| -> Result<Option<Token>> {
            let bytes = darkmagic_base::files::read_regular(path, 4096)?;
            if let Some(w) = shared_warning(path) {
                eprintln!("{w}");
            }
            let text = String::from_utf8_lossy(&bytes);
            let token = text.trim();
            if token.is_empty() {
                return Err(Error::flag("--ray-token-file", format!("{} is empty", path.display())));
            }
            Token::checked(token, &path.display().to_string()).map(Some)
        };
        if let Some(f) = file {
            return read(f);
        }
        if let Ok(t) = std::env::var("RAY_AUTH_TOKEN")
            && !t.trim().is_empty()
        {
            return Token::checked(t.trim(), "RAY_AUTH_TOKEN").map(Some);
        }
        if let Ok(p) = std::env::var("RAY_AUTH_TOKEN_PATH") {
            return read(Path::new(&p));
        }
        let default = std::env::var_os("HOME").map(|h| Path::new(&h).join(".ray/auth_token"));
        match default {
            Some(p) if p.is_file() => read(&p),
            _ => Ok(None),
        }
    }
}

/// A warning when a token file can be read by other users of this machine, as ssh warns of an
/// unprotected private key: whoever reads the token can submit jobs to the cluster.
fn shared_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "warning: {} can be read by other users (mode {mode:o}); whoever reads it can submit jobs to the \
             cluster: chmod 600 it",
            path.display()
        )
    })
}

#[derive(Clone, Debug)]
pub struct Ray {
    pub exe: PathBuf,
    /// The Ray dashboard address, e.g. `http://127.0.0.1:8265`.
    pub address: String,
    /// The authentication token, when the cluster requires one.
    pub token: Option<Token>,
    /// CPUs (and libtorch threads) per trial.
    pub cpus: usize,
    /// GPUs per trial.
    pub gpus: f64,
    pub attempts: usize,
    pub poll: Duration,
}

const TERMINAL: [&str; 3] = ["SUCCEEDED", "FAILED", "STOPPED"];

impl Ray {
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.address.trim_end_matches('/'));
        let body = body.map(|b| b.to_string());
        let token = self.token.as_ref().map(|t| t.0.as_str());
        let (code, text) = http::request(method, &url, body.as_deref(), token)?;
        // What the server said, as far as an error shows it: never the token (a server may
        // echo the request's headers), at most 300 characters.
        let shown = || -> String {
            let redacted = token.map_or(text.clone(), |t| text.replace(t, "<redacted>"));
            redacted.trim().chars().take(300).collect()
        };
        if code == 401 || code == 403 {
            let sent = if token.is_some() {
                "the token darkmagic sent was refused"
            } else {
                "darkmagic found no token"
            };
            return Err(Error::service(
                "ray",
                url,
                format!(
                    "Ray answered {code} ({}): the cluster uses token authentication and {sent}; give the cluster's token with --ray-token-file FILE, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (`ray get-auth-token` on the head prints it)",
                    shown()
                ),
            ));
        }
        if !(200..300).contains(&code) {
            return Err(Error::service("ray", url, format!("Ray answered {code}: {}", shown())));
        }
        serde_json::from_str(&text).map_err(|e| Error::service("ray", url, format!("not JSON ({e}): {}", shown())))
    }

    /// The job's request body.
    pub fn submission(&self, job: &Job) -> Value {
        let entrypoint = format!(
            "{} train --run-dir {} --resume --threads {}",
            shell_quote(&self.exe.to_string_lossy()),
            shell_quote(&job.dir.to_string_lossy()),
            self.cpus
        );
        json!({
            "entrypoint": entrypoint,
            "entrypoint_num_cpus": self.cpus,
            "entrypoint_num_gpus": self.gpus,
            "metadata": {"darkmagic_trial": job.label},
        })
    }

    fn submit(&self, job: &Job) -> Result<String> {
        let v = self.api("POST", "/api/jobs/", Some(&self.submission(job)))?;
        v["submission_id"]
            .as_str()
            .or(v["job_id"].as_str())
            .map(String::from)
            .ok_or_else(|| Error::service("ray", self.address.clone(), format!("no submission id in {v}")))
    }

    fn status(&self, id: &str) -> Result<String> {
        Ok(self.api("GET", &format!("/api/jobs/{id}"), None)?["status"]
            .as_str()
            .unwrap_or("UNKNOWN")
            .to_string())
    }

    fn save_logs(&self, id: &str, job: &Job) {
        let path = job.dir.join("ray.log");
        let logs = self
            .api("GET", &format!("/api/jobs/{id}/logs"), None)
            .map(|v| v["logs"].as_str().unwrap_or("").to_string());
        let _ = std::fs::write(&path, logs.unwrap_or_else(|e| format!("logs unavailable: {e}")));
    }
}

impl Executor for Ray {
    fn run_all(&mut self, jobs: &[Job]) -> Result<()> {
        with_retries(jobs, self.attempts, |pending, attempt| {
            let ids: Vec<String> = pending.iter().map(|j| self.submit(j)).collect::<Result<_>>()?;
            println!(
                "submitted {} Ray job(s) to {}, attempt {attempt}",
                ids.len(),
                self.address
            );
            let mut states: Vec<Option<String>> = vec![None; ids.len()];
            while states.iter().any(Option::is_none) {
                std::thread::sleep(self.poll);
                for (i, id) in ids.iter().enumerate() {
                    if states[i].is_some() {
                        continue;
                    }
                    let s = self.status(id)?;
                    if TERMINAL.contains(&s.as_str()) {
                        self.save_logs(id, &pending[i]);
                        println!("{}: Ray job {id} {s}", pending[i].label);
                        states[i] = Some(s);
                    }
                }
            }
            let outcomes = ids
                .iter()
                .zip(states)
                .zip(pending)
                .map(|((id, s), job)| Unfinished {
                    reason: format!("Ray job {id} ended {} without a final result", s.unwrap_or_default()),
                    log: job.dir.join("ray.log"),
                })
                .collect();
            Ok(Some(outcomes))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that answers 401 with the request it got (its Authorization header too): the
    /// error quotes the answer with the token redacted.
    #[test]
    fn an_echoed_token_is_never_shown() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = vec![0u8; 4096];
            let n = s.read(&mut req).unwrap();
            let body = String::from_utf8_lossy(&req[..n]).into_owned();
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).unwrap();
        });
        let r = Ray {
            exe: "/bin/dm".into(),
            address: format!("http://{addr}"),
            token: Some(Token("s3cret-tok".into())),
            cpus: 1,
            gpus: 0.0,
            attempts: 1,
            poll: Duration::from_millis(10),
        };
        let e = r.api("GET", "/api/jobs/", None).unwrap_err().to_string();
        assert!(
            e.contains("401") && e.contains("<redacted>") && !e.contains("s3cret-tok"),
            "{e}"
        );
    }

    #[test]
    fn a_token_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dm-token-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "abc").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = shared_warning(&file).expect("mode 644 is warned about");
        assert!(
            w.contains("token") && w.contains("mode 644") && w.contains("chmod 600"),
            "{w}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(shared_warning(&file), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_token_with_a_line_break_is_refused_without_being_shown() {
        let e = Token::checked("abc\r\nX-Evil: 1", "RAY_AUTH_TOKEN")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RAY_AUTH_TOKEN") && e.contains("not visible ASCII") && !e.contains("abc"),
            "{e}"
        );
        assert!(Token::checked("abc-123_XYZ", "f").is_ok());
    }

    #[test]
    fn submission_carries_the_entrypoint_and_resources() {
        let r = Ray {
            exe: "/bin/dm".into(),
            address: "http://h:8265".into(),
            token: Some(Token("s3cret".into())),
            cpus: 2,
            gpus: 0.5,
            attempts: 2,
            poll: Duration::from_secs(1),
        };
        let job = Job {
            dir: "/runs/x/seed-0".into(),
            label: "x seed 0".into(),
            epochs: 1,
        };
        assert!(!format!("{r:?}").contains("s3cret"), "Debug shows the token");
        let v = r.submission(&job);
        assert_eq!(
            v["entrypoint"],
            "'/bin/dm' train --run-dir '/runs/x/seed-0' --resume --threads 2"
        );
        assert_eq!(
            (v["entrypoint_num_cpus"].as_u64(), v["entrypoint_num_gpus"].as_f64()),
            (Some(2), Some(0.5))
        );
    }
}
