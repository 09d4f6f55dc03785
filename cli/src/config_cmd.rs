//! `litefs-guard config check|render|init`.

use crate::{exit, locate, usage, InitArgs, InputArgs, Lease};
use litefs_config::{
    discover, load_file, parse_document, parse_document_bytes, ConfigError, ConsulConfig, DataConfig,
    Document, Exec, ExecCommand, FuseConfig, LeaseConfig, LeaseType, LiteFsConfig, Problem, ProxyConfig,
    Search, MAX_CONFIG_BYTES,
};
use litefs_guard::status::ConfigSource;
use std::io::Read;
use std::path::Path;

/// What was read: the name used in reports, the text (to find keys in),
/// and the lenient reading, or why there is none.
struct Input {
    name: String,
    text: Option<String>,
    document: Result<Document, ConfigError>,
}

fn env_var(name: &str) -> Option<String> {
    ConfigSource::var(name)
}

/// Standard input or a file, at most MAX_CONFIG_BYTES.
fn read_bytes(file: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let cap = MAX_CONFIG_BYTES + 1;
    let r = if file == "-" {
        std::io::stdin().lock().take(cap).read_to_end(&mut buf)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(cap).read_to_end(&mut buf))
    };
    r.map_err(|e| format!("{}: {e}", shown_name(file)))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes",
            shown_name(file)
        ));
    }
    Ok(buf)
}

fn shown_name(file: &str) -> String {
    if file == "-" {
        "<stdin>".to_owned()
    } else {
        file.to_owned()
    }
}

/// A JSON object with litefs.yml's structure, as YAML text (values literal:
/// read back without expansion).
fn json_to_yaml(bytes: &[u8], name: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("{name}: not JSON: {e}"))?;
    if !v.is_object() {
        return Err(format!(
            "{name}: the JSON must be an object, like {{\"fuse\": {{\"dir\": \"/litefs\"}}}}"
        ));
    }
    serde_norway::to_string(&v).map_err(|e| format!("{name}: {e}"))
}

/// Reads what the arguments name. Err is the exit status, the reason printed.
fn input(file: Option<&str>, from_json: bool) -> Result<Input, u8> {
    let config_error = |e: litefs_guard::status::StatusError| {
        eprintln!("litefs-guard: {e}");
        exit::CONFIG
    };
    let fail = |m: String| {
        eprintln!("litefs-guard: {m}");
        exit::PROBLEMS
    };
    let env: &dyn Fn(&str) -> Option<String> = &env_var;
    match (file, from_json) {
        (None, true) => Err(usage("--from-json needs FILE (`-` for standard input)")),
        (Some(f), true) => {
            let name = shown_name(f);
            let yaml = read_bytes(f)
                .and_then(|b| json_to_yaml(&b, &name))
                .map_err(fail)?;
            let document = parse_document(&yaml, &name, None);
            Ok(Input {
                name,
                text: Some(yaml),
                document,
            })
        }
        (Some(f), false) => {
            let source = ConfigSource::from_env().map_err(config_error)?;
            let env = source.expand.then_some(env);
            if f == "-" {
                let name = shown_name(f);
                let bytes = read_bytes(f).map_err(fail)?;
                let document = parse_document_bytes(&bytes, &name, env);
                let text = String::from_utf8(bytes).ok();
                return Ok(Input { name, text, document });
            }
            Ok(Input {
                name: f.to_owned(),
                text: std::fs::read_to_string(f).ok(),
                document: load_file(Path::new(f), env),
            })
        }
        (None, false) => {
            let source = ConfigSource::from_env().map_err(config_error)?;
            let found = discover(&Search {
                explicit: source.explicit.as_deref(),
                candidates: &source.candidates,
                expand: source.expand,
                env,
            });
            match found {
                Ok(Some(d)) => Ok(Input {
                    name: d.path.display().to_string(),
                    text: std::fs::read_to_string(&d.path).ok(),
                    document: Ok(d.document),
                }),
                Ok(None) => {
                    let searched: Vec<String> = source
                        .candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    Err(fail(format!(
                        "no litefs.yml found (searched {}); name one, or set LITEFS_GUARD_CONFIG",
                        searched.join(", ")
                    )))
                }
                Err(e) => Ok(Input {
                    name: String::new(),
                    text: None,
                    document: Err(e),
                }),
            }
        }
    }
}

fn problems_of(input: &Input) -> Vec<Problem> {
    match &input.document {
        Ok(d) => d.problems.clone(),
        Err(e) => vec![Problem::from(e)],
    }
}

/// The problem's key: its own, else the key written on its line.
fn key_of(p: &Problem, text: Option<&str>) -> Option<String> {
    p.key.clone().or_else(|| locate::key_at(text?, p.line?))
}

/// `FILE:LINE:COL: key: reason`: litefs-config's report, with the position
/// of the key added when the parser did not know it (rules checked after
/// parsing). A key that is not written (and has no written section) keeps
/// `FILE: key: reason`.
fn shown(p: &Problem, text: Option<&str>) -> (String, Option<(usize, usize)>) {
    if let (Some(l), Some(c)) = (p.line, p.column) {
        return (p.report.clone(), Some((l, c)));
    }
    let pos = p
        .key
        .as_deref()
        .zip(text)
        .and_then(|(k, t)| locate::position(t, k));
    let prefix = format!("{}: ", p.file);
    match (pos, p.report.strip_prefix(&prefix)) {
        (Some((l, c)), Some(rest)) => (format!("{}:{l}:{c}: {rest}", p.file), Some((l, c))),
        _ => (p.report.clone(), None),
    }
}

fn problems_json(problems: &[Problem], text: Option<&str>) -> serde_json::Value {
    serde_json::Value::Array(
        problems
            .iter()
            .map(|p| {
                let (report, pos) = shown(p, text);
                serde_json::json!({
                    "file": p.file,
                    "line": pos.map(|(l, _)| l),
                    "column": pos.map(|(_, c)| c),
                    "key": key_of(p, text),
                    "report": report,
                })
            })
            .collect(),
    )
}

pub fn check(a: &InputArgs) -> u8 {
    let input = match input(a.file.as_deref(), a.from_json) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let problems = problems_of(&input);
    let text = input.text.as_deref();
    if a.json {
        println!("{}", problems_json(&problems, text));
    } else if problems.is_empty() {
        println!("{}: ok", input.name);
    } else {
        for p in &problems {
            println!("{}", shown(p, text).0);
        }
    }
    if problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

pub fn render(a: &InputArgs) -> u8 {
    let input = match input(a.file.as_deref(), a.from_json) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let problems = problems_of(&input);
    let text = input.text.as_deref();
    let config = input.document.as_ref().ok().and_then(|d| d.config.as_ref());
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "config": config.map(|c| c.redacted().to_json()),
                "problems": problems_json(&problems, text),
            })
        );
        return if config.is_some() {
            exit::OK
        } else {
            exit::PROBLEMS
        };
    }
    // What LiteFS would refuse is shown, but does not stop the rendering.
    for p in &problems {
        eprintln!(
            "{}{}",
            if config.is_some() { "warning: " } else { "" },
            shown(p, text).0
        );
    }
    match config {
        Some(c) => {
            print!("{}", c.redacted().to_yaml());
            exit::OK
        }
        None => exit::PROBLEMS,
    }
}

/// The config the flags describe.
fn from_flags(a: &InitArgs) -> Result<LiteFsConfig, String> {
    let consul_given = a.consul_url.is_some() || a.consul_key.is_some();
    if a.lease == Lease::Static && consul_given {
        return Err("--consul-url and --consul-key need --lease consul".into());
    }
    let none_if_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let exec = match a.exec.as_slice() {
        [] => None,
        [one] => Some(Exec::Command(one.clone())),
        many => Some(Exec::List(
            many.iter()
                .map(|c| ExecCommand {
                    cmd: c.clone(),
                    ..ExecCommand::default()
                })
                .collect(),
        )),
    };
    let proxy = ProxyConfig {
        addr: none_if_empty(&a.proxy_addr),
        target: none_if_empty(&a.proxy_target),
        db: none_if_empty(&a.proxy_db),
        ..ProxyConfig::default()
    };
    let has_proxy = proxy != ProxyConfig::default();
    Ok(LiteFsConfig {
        fuse: Some(FuseConfig {
            dir: Some(a.mount.clone()),
            ..FuseConfig::default()
        }),
        data: Some(DataConfig {
            dir: Some(a.data_dir.clone()),
            ..DataConfig::default()
        }),
        exec,
        proxy: has_proxy.then_some(proxy),
        lease: Some(LeaseConfig {
            kind: Some(match a.lease {
                Lease::Static => LeaseType::Static,
                Lease::Consul => LeaseType::Consul,
            }),
            hostname: none_if_empty(&a.hostname),
            advertise_url: none_if_empty(&a.advertise_url),
            candidate: a.candidate,
            consul: consul_given.then(|| ConsulConfig {
                url: none_if_empty(&a.consul_url),
                key: none_if_empty(&a.consul_key),
                ..ConsulConfig::default()
            }),
            ..LeaseConfig::default()
        }),
        ..LiteFsConfig::default()
    })
}

/// Whether any flag that describes the file was given (with --from-json
/// none may be).
fn any_flag(a: &InitArgs) -> bool {
    a.lease != Lease::Static
        || a.mount != "/litefs"
        || a.data_dir != "/var/lib/litefs"
        || a.candidate.is_some()
        || a.hostname.is_some()
        || a.advertise_url.is_some()
        || a.consul_url.is_some()
        || a.consul_key.is_some()
        || a.proxy_addr.is_some()
        || a.proxy_target.is_some()
        || a.proxy_db.is_some()
        || !a.exec.is_empty()
}

pub fn init(a: &InitArgs) -> u8 {
    let (config, problems, text) = match &a.from_json {
        Some(f) => {
            if any_flag(a) {
                return usage("--from-json takes the whole file from JSON: leave out the other flags");
            }
            let input = match input(Some(f), true) {
                Ok(i) => i,
                Err(code) => return code,
            };
            let problems = problems_of(&input);
            let config = input.document.ok().and_then(|d| d.config);
            (config, problems, input.text)
        }
        None => match from_flags(a) {
            Ok(c) => {
                let yaml = c.to_yaml();
                let problems = litefs_config::check_str(&yaml, "<flags>", None);
                (Some(c), problems, Some(yaml))
            }
            Err(m) => return usage(&m),
        },
    };
    if !problems.is_empty() || config.is_none() {
        for p in &problems {
            eprintln!("{}", shown(p, text.as_deref()).0);
        }
        if a.from_json.is_some() {
            // Machine-readable too, for callers that name their own keys.
            eprintln!("problems-json: {}", problems_json(&problems, text.as_deref()));
        }
        return exit::PROBLEMS;
    }
    if let Some(c) = config {
        print!("{}", c.to_yaml());
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn init_args(args: &[&str]) -> InitArgs {
        let mut argv = vec!["litefs-guard", "config", "init"];
        argv.extend_from_slice(args);
        match crate::Cli::try_parse_from(argv).unwrap().command {
            crate::Command::Config(crate::ConfigCommand::Init(a)) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn init_round_trips_and_passes_check() {
        for args in [
            &[][..],
            &[
                "--candidate",
                "false",
                "--hostname",
                "node-b",
                "--advertise-url",
                "http://node-b:20202",
            ][..],
            &[
                "--lease",
                "consul",
                "--consul-url",
                "https://:tok$en@consul:8501",
                "--consul-key",
                "litefs/app",
                "--advertise-url",
                "http://node-a:20202",
                "--proxy-addr",
                ":8080",
                "--proxy-target",
                "localhost:8081",
                "--proxy-db",
                "app.db",
                "--exec",
                "app migrate",
                "--exec",
                "app serve: \"x\" # y",
            ][..],
        ] {
            let c = from_flags(&init_args(args)).unwrap();
            let yaml = c.to_yaml();
            assert_eq!(
                litefs_config::check_str(&yaml, "t.yml", None),
                [],
                "{args:?}\n{yaml}"
            );
            let env = |_: &str| Some("EXPANDED".to_owned());
            for env in [None, Some(&env as &dyn Fn(&str) -> Option<String>)] {
                let back = litefs_config::parse_str(&yaml, "t.yml", env).unwrap();
                assert_eq!(back, c, "{args:?}");
                assert_eq!(back.to_yaml(), yaml);
            }
        }
    }

    #[test]
    fn consul_flags_need_a_consul_lease() {
        assert!(from_flags(&init_args(&["--consul-key", "k"])).is_err());
    }
}
