//! Addresses of servers (MLflow, Ray): the credentials an `http://user:password@host` address
//! may carry, found so that they can be refused and never printed.

/// `uri` as it may be printed: the password of a `user:password@host` part replaced by `***`
/// (the whole part where the user name is not plain letters, digits, `-`, `_` and `.`: an
/// encoded `%3A` may hide a password in it), and a query string's values (`?token=...`) by `***`.
pub fn redacted(uri: &str) -> String {
    let (mut out, rest) = match credentials(uri) {
        Some((start, end)) => {
            let user = uri[start..end].split(':').next().unwrap_or("");
            let plain = user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            let shown = if plain { format!("{user}:***") } else { "***".into() };
            (format!("{}{shown}", &uri[..start]), &uri[end..])
        }
        None => (String::new(), uri),
    };
    // Whatever follows a `?` (query), `#` (fragment) or `;` (parameters) may carry a token.
    match rest.find(['?', '#', ';']) {
        Some(i) => out += &format!("{}{}***", &rest[..i], &rest[i..i + 1]),
        None => out += rest,
    }
    out
}

/// The byte range of the `user:password` part of an `http://user:password@host/...` address
/// (RFC 3986's userinfo, before the `@`), if it has one. Any `@` after the scheme counts, also
/// past a `/`, `?` or `#` (a password holding one of those, unencoded), and whatever the scheme,
/// its case or its slashes (`HTTP://`, `http:/`, `http:`, none): an address typed wrong is still
/// never printed with its password. (A server address has no other use for an `@`.)
pub fn credentials(uri: &str) -> Option<(usize, usize)> {
    let start = match uri.find("://") {
        Some(i) => i + 3,
        None => scheme_end(uri),
    };
    uri[start..].rfind('@').map(|at| (start, start + at))
}

/// Where the text after a scheme and its slashes starts (`http:/x` -> 6, `http:x` -> 5), or 0
/// without one: a scheme is letters (digits, `+`, `.`, `-`) before a `:` followed by `/`, or
/// `http`/`https` alone (`alice:pw@host` has no scheme: `alice` is the user).
fn scheme_end(uri: &str) -> usize {
    let Some(colon) = uri.find(':') else { return 0 };
    let (scheme, after) = (&uri[..colon], &uri[colon + 1..]);
    let well_formed = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    let web = ["http", "https"].iter().any(|w| scheme.eq_ignore_ascii_case(w));
    if !(well_formed && (after.starts_with('/') || web)) {
        return 0;
    }
    colon + 1 + after.chars().take_while(|&c| c == '/').count()
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
        // An encoded colon: the user name may hold the password.
        assert_eq!(redacted("http://u%3Ap@h"), "http://***@h");
        for typo in [
            "HTTP://alice:pw@h:1",
            "https://alice:pw@h",
            "alice:pw@h:1",
            "http:alice:pw@h:1",
            "http:/alice:pw@h:1",
            "http://alice:p/w@h:1",
            "http://alice:p#w@h:1",
            "http://alice:p?w@h:1",
        ] {
            assert!(credentials(typo).is_some(), "{typo}");
            assert!(
                !redacted(typo).contains("pw") && !redacted(typo).contains("p/w"),
                "{typo}: {}",
                redacted(typo)
            );
        }
        for plain in ["http://127.0.0.1:5000", "127.0.0.1:5000", "http://h:1/api/2.0"] {
            assert_eq!(credentials(plain), None, "{plain}");
            assert_eq!(redacted(plain), plain);
        }
        assert_eq!(redacted("http://h:1/x?token=abc&password=def"), "http://h:1/x?***");
        assert_eq!(redacted("http://h:1/x#token=abc"), "http://h:1/x#***");
        assert_eq!(redacted("http://h:1/x;token=abc"), "http://h:1/x;***");
    }
}
