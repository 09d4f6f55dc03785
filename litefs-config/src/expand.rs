//! `${VAR}` / `$VAR` expansion over the whole file text, before YAML parsing,
//! exactly as LiteFS does it: Go's `os.Expand` syntax with LiteFS's lookup,
//! which also evaluates `${A == 'x'}`, `${A != "x"}` and `${A == B}` to
//! `true`/`false` (the usual `candidate: ${FLY_REGION == PRIMARY_REGION}`).
//!
//! Go's rules, kept byte for byte: unset variables expand to ""; `$` before
//! anything that is not a name, `{` or a shell special character stays a
//! literal `$`; `$1`, `$$`, `$@` … look up the one-character name; `${}` and
//! an unclosed `${` are dropped. There is no escape for a literal `$name`.

/// Expands `text` with `lookup` (None = unset).
pub fn expand_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // text[copied..j] not yet copied
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] != b'$' || j + 1 >= bytes.len() {
            j += 1;
            continue;
        }
        out.push_str(&text[copied..j]);
        let (name, width) = shell_name(&text[j + 1..]);
        match name {
            Some(name) => out.push_str(&resolve(name, lookup)),
            // Valid syntax but no name: keep the `$`.
            None if width == 0 => out.push('$'),
            // Bad syntax (`${}`, unclosed `${`): Go drops those characters.
            None => {}
        }
        j += width + 1;
        copied = j;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn is_name_byte(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the name after a `$` and how many bytes it spans.
/// `(None, 0)` keeps the `$`; `(None, w)` swallows `w` bytes of bad syntax.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        return match s[1..].find('}') {
            Some(0) => (None, 2),
            Some(end) => (Some(&s[1..end + 1]), end + 2),
            None => (None, 1),
        };
    }
    if is_special(b[0]) {
        return (Some(&s[..1]), 1);
    }
    let len = b.iter().take_while(|c| is_name_byte(**c)).count();
    if len == 0 {
        (None, 0)
    } else {
        (Some(&s[..len]), len)
    }
}

/// LiteFS's mapping function: a trimmed name, or a comparison.
fn resolve(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let v = raw.trim();
    let get = |name: &str| lookup(name).unwrap_or_default();
    if let Some((name, equal, rhs)) = comparison(v) {
        let other = if let Some(lit) = quoted(rhs, '\'').or_else(|| quoted(rhs, '"')) {
            lit.to_owned()
        } else if !rhs.is_empty() && rhs.bytes().all(is_name_byte) {
            get(rhs)
        } else {
            return get(v);
        };
        return ((get(name) == other) == equal).to_string();
    }
    get(v)
}

/// `NAME \s* (==|!=) \s* REST` → (NAME, is "==", REST).
fn comparison(v: &str) -> Option<(&str, bool, &str)> {
    let name_len = v.bytes().take_while(|c| is_name_byte(*c)).count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = v.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_space);
    let (equal, rest) = if let Some(r) = rest.strip_prefix("==") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (false, r)
    } else {
        return None;
    };
    Some((name, equal, rest.trim_start_matches(is_go_space)))
}

/// Go regexp `\s`.
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// The text between a leading and a trailing `q`; Go's `.` never matches a
/// newline, so a literal containing one does not count.
fn quoted(s: &str, q: char) -> Option<&str> {
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    (!inner.contains('\n')).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("node-1".into()),
            "REGION" => Some("ord".into()),
            "PRIMARY" => Some("ord".into()),
            "EMPTY" => Some(String::new()),
            "$" => Some("dollar".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand_env(s, &env)
    }

    #[test]
    fn expands_like_go_os_expand() {
        assert_eq!(x("hostname: ${HOST}"), "hostname: node-1");
        assert_eq!(x("hostname: $HOST.internal"), "hostname: node-1.internal");
        assert_eq!(x("a: $UNSET|${UNSET}|$EMPTY"), "a: ||");
        assert_eq!(x("a: ${ HOST }"), "a: node-1");
        assert_eq!(x("cost: 5$"), "cost: 5$");
        assert_eq!(x("a: $ b"), "a: $ b");
        assert_eq!(x("a: $/x"), "a: $/x");
        assert_eq!(x("a: $é"), "a: $é");
        assert_eq!(x("a: $$"), "a: dollar");
        assert_eq!(x("a: $1x"), "a: x");
        assert_eq!(x("a: ${$}"), "a: dollar");
        assert_eq!(x("a: ${}b"), "a: b");
        assert_eq!(x("a: ${HOST"), "a: HOST");
        assert_eq!(x("a: $HOST$HOST"), "a: node-1node-1");
        assert_eq!(x("no dollars"), "no dollars");
        assert_eq!(x(""), "");
    }

    #[test]
    fn evaluates_litefs_comparisons() {
        assert_eq!(x("${REGION == PRIMARY}"), "true");
        assert_eq!(x("${REGION != PRIMARY}"), "false");
        assert_eq!(x("${REGION == 'ord'}"), "true");
        assert_eq!(x("${REGION=='iad'}"), "false");
        assert_eq!(x("${ REGION != \"iad\" }"), "true");
        assert_eq!(x("${UNSET == ''}"), "true");
        assert_eq!(x("${UNSET == EMPTY}"), "true");
        // Not a comparison: looked up as a (nonexistent) variable name.
        assert_eq!(x("${REGION == o r d}"), "");
        assert_eq!(x("${REGION === 'x'}"), "");
    }

    proptest! {
        #[test]
        fn never_panics_and_is_identity_without_dollars(s in "\\PC{0,40}") {
            let out = expand_env(&s, &env);
            if !s.contains('$') {
                prop_assert_eq!(out, s);
            }
        }
    }
}
