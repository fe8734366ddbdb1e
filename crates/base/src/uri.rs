//! Addresses of servers (MLflow, Ray): the credentials an `http://user:password@host` address
//! may carry, found so that they can be refused and never printed.

/// `uri` as it may be printed: the password of a `user:password@host` part replaced by `***`.
pub fn redacted(uri: &str) -> String {
    match credentials(uri) {
        Some((start, end)) => {
            let user = uri[start..end].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..start], &uri[end..])
        }
        None => uri.to_string(),
    }
}

/// The byte range of the `user:password` part of an `http://user:password@host/...` address
/// (RFC 3986's userinfo: before the last `@` of the authority), if it has one. Whatever the
/// scheme or its case (`HTTP://`, `https://`), and without one (`alice:pw@host`, `http:alice:pw@host`):
/// the authority is then the text up to the first `/`, `?` or `#`, so that an address typed
/// wrong is still never printed with its password.
pub fn credentials(uri: &str) -> Option<(usize, usize)> {
    let start = uri.find("://").map_or(0, |i| i + 3);
    let authority = uri[start..].split(['/', '?', '#']).next().unwrap_or("");
    authority.rfind('@').map(|at| (start, start + at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_and_never_printed() {
        let uri = "http://alice:s3cretPW@127.0.0.1:15001/api";
        assert_eq!(credentials(uri), Some((7, 21)));
        assert_eq!(redacted(uri), "http://alice:***@127.0.0.1:15001/api");
        assert_eq!(redacted("http://a:b@c@h:1"), "http://a:***@h:1");
        for typo in [
            "HTTP://alice:pw@h:1",
            "https://alice:pw@h",
            "alice:pw@h:1",
            "http:alice:pw@h:1",
        ] {
            assert!(credentials(typo).is_some(), "{typo}");
            assert!(!redacted(typo).contains("pw"), "{typo}: {}", redacted(typo));
        }
        for plain in [
            "http://127.0.0.1:5000",
            "http://h:1/path@x",
            "http://h:1?q=a@b",
            "127.0.0.1:5000",
        ] {
            assert_eq!(credentials(plain), None, "{plain}");
            assert_eq!(redacted(plain), plain);
        }
    }
}
