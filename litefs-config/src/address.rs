//! Syntax of the network values in litefs.yml: listen/dial addresses
//! (`:8080`, `host:port`, `[::1]:8080`) and base URLs
//! (`http(s)://[user:pass@]host[:port][/path]`; Consul's URL carries its
//! token as the password). Errors are a short description of the problem.

use std::net::Ipv6Addr;

/// Whether port 0 ("any free port") is acceptable: fine to listen on,
/// meaningless to connect to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    ListenAny,
    Required,
}

/// `host:port`, `:port` or `[ipv6]:port`.
pub(crate) fn check_addr(s: &str, port: Port) -> Result<(), String> {
    let (host, port_text) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("has \"[\" without a closing \"]\"")?;
        check_ipv6(v6)?;
        let p = after
            .strip_prefix(':')
            .ok_or("needs a port after the bracketed IPv6 address, e.g. \"[::1]:8080\"")?;
        (None, p)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or("has no port; write host:port or :port")?;
        if h.contains(':') {
            return Err("looks like a bare IPv6 address; put it in brackets, e.g. \"[::1]:8080\"".into());
        }
        (Some(h), p)
    };
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        check_hostname(h)?;
    }
    check_port(port_text, port)
}

/// `http(s)://[userinfo@]host[:port][/path]`.
pub(crate) fn check_url(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "contains {c:?}; URLs have no spaces or control characters"
        ));
    }
    let rest = strip_scheme(s).ok_or("must start with http:// or https://")?;
    if s.contains(['?', '#']) {
        return Err("has a query or fragment (? or #), which LiteFS does not use".into());
    }
    let (authority, _path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // Go splits userinfo at the last "@".
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if hostport.is_empty() {
        return Err("has no host".into());
    }
    let port_text = if let Some(inner) = hostport.strip_prefix('[') {
        let (v6, after) = inner.split_once(']').ok_or("has \"[\" without a closing \"]\"")?;
        check_ipv6(v6)?;
        match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("has text after the \"]\" that is not a :port")?,
            ),
        }
    } else {
        let (h, p) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if h.contains(':') {
            return Err("has a bare IPv6 host; put it in brackets, e.g. http://[::1]:20202".into());
        }
        if h.is_empty() {
            return Err("has no host".into());
        }
        check_hostname(h)?;
        p
    };
    match port_text {
        Some(p) => check_port(p, Port::Required),
        None => Ok(()),
    }
}

/// The URL with any password replaced, for error messages and
/// `litefs_config()` (as Go's `url.Redacted` for http and https URLs): the
/// Consul token must not end up in logs or in front of SQL clients. A URL
/// LiteFS would refuse (another scheme, none at all) may still carry one:
/// there the whole user part before `@` is hidden.
pub(crate) fn redact_url(s: &str) -> String {
    let (prefix_len, rest, http) = match strip_scheme(s) {
        Some(rest) => (s.len() - rest.len(), rest, true),
        None => match s.find("://") {
            Some(i) => (i + 3, &s[i + 3..], false),
            None => (0, s, false),
        },
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return s.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:xxxxx{}", &s[..prefix_len], &rest[..colon], &rest[at..]),
        None if http => s.to_owned(),
        None => format!("{}xxxxx{}", &s[..prefix_len], &rest[at..]),
    }
}

fn strip_scheme(s: &str) -> Option<&str> {
    s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"))
}

fn check_ipv6(s: &str) -> Result<(), String> {
    s.parse::<Ipv6Addr>()
        .map(|_| ())
        .map_err(|_| format!("has {s:?} in brackets, which is not an IPv6 address"))
}

/// DNS-style names and IPv4 literals: labels of letters, digits, `-`, `_`
/// (container hostnames use it), a trailing dot allowed.
fn check_hostname(h: &str) -> Result<(), String> {
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > 253 {
        return Err("has a host name longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "has host {h:?} with an empty label (an unset ${{VAR}} before or after a dot?)"
            ));
        }
        if label.len() > 63 {
            return Err(format!("has host {h:?} with a label over 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "has host {h:?} containing {c:?}; host names are letters, digits, '-', '_' and '.' (use punycode for non-ASCII names)"
            ));
        }
    }
    Ok(())
}

fn check_port(p: &str, need: Port) -> Result<(), String> {
    if p.is_empty() {
        return Err("has an empty port".into());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("has port {p:?}, which is not a number"));
    }
    match p.parse::<u16>() {
        Ok(0) if need == Port::Required => Err("has port 0, which cannot be connected to".into()),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("has port {p}, over 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_litefs_addresses() {
        for a in [
            ":20202",
            "localhost:8081",
            "[::1]:8080",
            "0.0.0.0:80",
            "my_app.internal:1",
            "[fdaa::3]:20202",
        ] {
            assert_eq!(check_addr(a, Port::Required), Ok(()), "{a}");
        }
        assert_eq!(check_addr(":0", Port::ListenAny), Ok(()));
    }

    #[test]
    fn refuses_bad_addresses_with_reason() {
        let e = |a: &str| check_addr(a, Port::Required).err().unwrap_or_default();
        assert_eq!(e("20202"), "has no port; write host:port or :port");
        assert_eq!(
            e("::1:8080"),
            "looks like a bare IPv6 address; put it in brackets, e.g. \"[::1]:8080\""
        );
        assert_eq!(
            e("[::1]"),
            "needs a port after the bracketed IPv6 address, e.g. \"[::1]:8080\""
        );
        assert_eq!(e("[::1:80"), "has \"[\" without a closing \"]\"");
        assert_eq!(
            e("[zz]:80"),
            "has \"zz\" in brackets, which is not an IPv6 address"
        );
        assert_eq!(e("host:"), "has an empty port");
        assert_eq!(e("host:http"), "has port \"http\", which is not a number");
        assert_eq!(e("host:65536"), "has port 65536, over 65535");
        assert_eq!(e(":0"), "has port 0, which cannot be connected to");
        assert_eq!(e("a b:1"), "has host \"a b\" containing ' '; host names are letters, digits, '-', '_' and '.' (use punycode for non-ASCII names)");
        assert_eq!(
            e(".internal:1"),
            "has host \".internal\" with an empty label (an unset ${VAR} before or after a dot?)"
        );
    }

    #[test]
    fn accepts_litefs_urls() {
        for u in [
            "http://myhost:20202",
            "https://myhost",
            "http://myhost:8500/",
            "http://[::1]:8500/v1",
            "http://[::1]",
            "https://:s3cr3t@consul-iad.fly-shared.net/app-123/",
            "http://10.0.0.1:20202",
            "http://host./path/with%20escape",
        ] {
            assert_eq!(check_url(u), Ok(()), "{u}");
        }
    }

    #[test]
    fn refuses_bad_urls_with_reason() {
        let e = |u: &str| check_url(u).err().unwrap_or_default();
        assert_eq!(e("myhost:20202"), "must start with http:// or https://");
        assert_eq!(e("ftp://x"), "must start with http:// or https://");
        assert_eq!(e("http://"), "has no host");
        assert_eq!(e("http://:8080"), "has no host");
        assert_eq!(e("http://h:0"), "has port 0, which cannot be connected to");
        assert_eq!(e("http://h:x"), "has port \"x\", which is not a number");
        assert_eq!(
            e("http://h?x=1"),
            "has a query or fragment (? or #), which LiteFS does not use"
        );
        assert_eq!(
            e("http://a b"),
            "contains ' '; URLs have no spaces or control characters"
        );
        assert_eq!(
            e("http://::1:80"),
            "has a bare IPv6 host; put it in brackets, e.g. http://[::1]:20202"
        );
        assert_eq!(e("http://[::1]x"), "has text after the \"]\" that is not a :port");
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact_url("https://:tok@h/p"), "https://:xxxxx@h/p");
        assert_eq!(redact_url("https://u:tok@h"), "https://u:xxxxx@h");
        assert_eq!(redact_url("https://u@h"), "https://u@h");
        assert_eq!(redact_url("http://h/a@b:c"), "http://h/a@b:c");
        assert_eq!(redact_url("nonsense"), "nonsense");
        // Schemes LiteFS refuses, and none at all, still hide the secret.
        assert_eq!(
            redact_url("htps://litefs:S3cret@consul:8500"),
            "htps://litefs:xxxxx@consul:8500"
        );
        assert_eq!(redact_url("S3cret@consul"), "xxxxx@consul");
        assert_eq!(redact_url("u:S3cret@consul/x"), "u:xxxxx@consul/x");
    }

    proptest! {
        #[test]
        fn never_panic(s in "\\PC{0,30}") {
            let _ = check_addr(&s, Port::Required);
            let _ = check_url(&s);
            let _ = redact_url(&s);
        }
    }
}
