//! Where a dotted key (`lease.consul.url`, `exec[1].cmd`) is written in a
//! block-style YAML text, and which key a line belongs to. litefs-config
//! gives a line and column for what the YAML parser sees (syntax, wrong
//! types); the rules it checks afterwards (`fuse.dir` must be absolute…)
//! only know the key, so `config check` finds the key in the text to print
//! `FILE:LINE:COL` for those too. Flow-style mappings are not looked into:
//! a key inside one gets the position of the enclosing block key.

/// One key or sequence item on the way from the root to a line.
struct Frame {
    indent: usize,
    segment: String,
    item: bool,
}

/// Each key line of `text` with its dotted path, line and column (1-based).
fn keys(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut counters: Vec<(String, usize)> = Vec::new();
    let path = |stack: &[Frame]| {
        let mut p = String::new();
        for f in stack {
            if !f.item && !p.is_empty() {
                p.push('.');
            }
            p.push_str(&f.segment);
        }
        p
    };
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = line.len() - trimmed.len();
        let mut rest = trimmed;
        while let Some(after) = rest.strip_prefix("- ").or_else(|| (rest == "-").then_some("")) {
            while stack
                .last()
                .is_some_and(|f| f.indent > indent || (f.indent == indent && f.item))
            {
                stack.pop();
            }
            let parent = path(&stack);
            let index = match counters.iter_mut().find(|(p, _)| *p == parent) {
                Some((_, i)) => {
                    *i += 1;
                    *i
                }
                None => {
                    counters.push((parent.clone(), 0));
                    0
                }
            };
            stack.push(Frame {
                indent,
                segment: format!("[{index}]"),
                item: true,
            });
            let skipped = after.len() - after.trim_start_matches(' ').len();
            indent += rest.len() - after.len() + skipped;
            rest = after.trim_start_matches(' ');
        }
        let Some(key) = key_of(rest) else { continue };
        while stack.last().is_some_and(|f| f.indent >= indent) {
            stack.pop();
        }
        stack.push(Frame {
            indent,
            segment: key,
            item: false,
        });
        out.push((path(&stack), n + 1, indent + 1));
    }
    out
}

/// The key at the start of a `key: value` (or `key:`) line, unquoted.
fn key_of(s: &str) -> Option<String> {
    if let Some(q @ ('"' | '\'')) = s.chars().next() {
        let end = s[1..].find(q)? + 1;
        let after = &s[end + 1..];
        return (after.starts_with(':')).then(|| s[1..end].to_owned());
    }
    if s.starts_with(['{', '[', '&', '*', '!', '|', '>', '?']) {
        return None;
    }
    let colon = s.match_indices(':').find(|(i, _)| {
        let next = s[i + 1..].chars().next();
        next.is_none() || next == Some(' ')
    })?;
    let key = s[..colon.0].trim_end();
    (!key.is_empty() && !key.contains(" #")).then(|| key.to_owned())
}

/// Line and column of `key`, or of its nearest enclosing key that is
/// written (a missing `lease.type` points at `lease:`); None when not even
/// the first part is.
pub fn position(text: &str, key: &str) -> Option<(usize, usize)> {
    let all = keys(text);
    let mut want = key.to_owned();
    loop {
        if let Some((_, l, c)) = all.iter().find(|(p, _, _)| *p == want) {
            return Some((*l, *c));
        }
        let cut = want.rfind(['.', '['])?;
        want.truncate(cut);
    }
}

/// The dotted path of the key written on `line` (1-based), or of the
/// nearest key line before it.
pub fn key_at(text: &str, line: usize) -> Option<String> {
    keys(text)
        .into_iter()
        .take_while(|(_, l, _)| *l <= line)
        .last()
        .map(|(p, _, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# c\nfuse:\n  dir: litefs\nexec:\n  - cmd: a\n    if-candidate: true\n  - cmd: \"\"\nlease:\n  type: static\n  consul:\n    url: x\n\"odd key\": 1\n";

    #[test]
    fn finds_keys_and_items() {
        assert_eq!(position(TEXT, "fuse.dir"), Some((3, 3)));
        assert_eq!(position(TEXT, "exec[0].cmd"), Some((5, 5)));
        assert_eq!(position(TEXT, "exec[0].if-candidate"), Some((6, 5)));
        assert_eq!(position(TEXT, "exec[1].cmd"), Some((7, 5)));
        assert_eq!(position(TEXT, "lease.consul.url"), Some((11, 5)));
        assert_eq!(position(TEXT, "odd key"), Some((12, 1)));
    }

    #[test]
    fn a_missing_key_points_at_its_section() {
        assert_eq!(position(TEXT, "lease.hostname"), Some((8, 1)));
        assert_eq!(position(TEXT, "data.dir"), None);
    }

    #[test]
    fn lines_map_back_to_keys() {
        assert_eq!(key_at(TEXT, 9).as_deref(), Some("lease.type"));
        assert_eq!(key_at(TEXT, 7).as_deref(), Some("exec[1].cmd"));
        assert_eq!(key_at(TEXT, 1), None);
    }

    #[test]
    fn unindented_sequences() {
        let t = "exec:\n- cmd: a\n- cmd: b\nhttp:\n  addr: x\n";
        assert_eq!(position(t, "exec[1].cmd"), Some((3, 3)));
        assert_eq!(position(t, "http.addr"), Some((5, 3)));
    }
}
