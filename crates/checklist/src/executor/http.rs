//! A minimal HTTP/1.1 client for JSON APIs on trusted endpoints (the Ray Jobs REST API, MLflow's
//! tracking API): one request per connection, `Connection: close`, plain and chunked bodies. No
//! TLS.
use darkmagic_base::error::{Error, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `method url` with an optional JSON body and, when given, `Authorization: Bearer
/// <token>`; returns the status code and the body. Errors never include the token.
pub fn request(method: &str, url: &str, json: Option<&str>, bearer: Option<&str>) -> Result<(u16, String)> {
    let body = json.unwrap_or("").as_bytes();
    request_within(method, url, (body, "application/json"), bearer, DEADLINE)
}

/// Sends `body` of type `content_type` (an upload), otherwise as [`request`].
pub fn send(method: &str, url: &str, body: &[u8], content_type: &str, bearer: Option<&str>) -> Result<(u16, String)> {
    request_within(method, url, (body, content_type), bearer, DEADLINE)
}

/// How long one request may take in all: a server that sends a byte now and then never trips
/// a per-read timeout.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The largest answer read.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// [`send`] with its own deadline for the whole exchange; `body` is (bytes, content type).
fn request_within(
    method: &str,
    url: &str,
    (body, content_type): (&[u8], &str),
    bearer: Option<&str>,
    deadline: Duration,
) -> Result<(u16, String)> {
    let started = std::time::Instant::now();
    let bad = |m: String| Error::service("http", url, m);
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// addresses are supported".into()))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).map_err(|e| bad(format!("cannot connect: {e}")))?;
    stream
        .set_read_timeout(Some(deadline.min(Duration::from_secs(60))))
        .map_err(|e| bad(e.to_string()))?;
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| bad(e.to_string()))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 1 << 16];
    loop {
        if started.elapsed() > deadline {
            return Err(bad(format!("no complete answer within {} s", deadline.as_secs())));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(e.to_string())),
        }
        if raw.len() > MAX_RESPONSE_BYTES {
            return Err(bad(format!("answer larger than {MAX_RESPONSE_BYTES} bytes")));
        }
    }
    parse_response(&raw).ok_or_else(|| bad("malformed HTTP response".into()))
}

/// Splits a raw response into status code and (de-chunked) body.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    let body = &raw[split + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..line_end]).split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(plain), Some((200, "{\"a\":1}".into())));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nfound\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((404, "not found".into())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn round_trip_against_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n{}") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early");
                req.extend_from_slice(&buf[..n]);
            }
            let req = String::from_utf8_lossy(&req).into_owned();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
            req
        });
        let (code, body) = request("POST", &format!("http://{addr}/api/jobs/"), Some("{}"), Some("t0k")).unwrap();
        assert_eq!((code, body.as_str()), (200, "ok"));
        let req = server.join().unwrap();
        assert!(
            req.starts_with("POST /api/jobs/ HTTP/1.1\r\n") && req.ends_with("\r\n\r\n{}"),
            "{req}"
        );
        assert!(req.contains("\r\nAuthorization: Bearer t0k\r\n"), "{req}");
    }

    /// A server that sends a byte every 300 ms never trips a per-read timeout; the deadline of
    /// the whole exchange ends it.
    #[test]
    fn a_server_that_dribbles_bytes_meets_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            for _ in 0..20 {
                if s.write_all(b"H").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let started = std::time::Instant::now();
        let e = request_within(
            "GET",
            &format!("http://{addr}/api/jobs/"),
            (b"", "application/json"),
            None,
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no complete answer within 1 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }
}
