//! Typed model of litefs.yml, key for key as LiteFS (v0.5) spells them.
//!
//! Every value is optional and records only what the file says: `None` means
//! "absent", so rendering gives back the same document. LiteFS's defaults are
//! applied by the accessors that need them (`http_addr`, `is_candidate`).
//! Keys the model does not know are kept in each section's `extra` map, in
//! the same place, and listed by `unknown_keys()`.

use super::address::redact_url;
use super::duration::GoDuration;
use super::gobool;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Unknown keys of one mapping, sorted so rendering is deterministic.
pub type Extra = BTreeMap<String, serde_norway::Value>;

/// LiteFS's default `http.addr`.
pub const DEFAULT_HTTP_ADDR: &str = ":20202";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LiteFsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuse: Option<FuseConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_sync: Option<bool>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub exit_on_error: Option<bool>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub strict_verify: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FuseConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_other: Option<bool>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub compress: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_monitor_interval: Option<GoDuration>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `exec:` is either one command line or a list of commands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Exec {
    Command(String),
    List(Vec<ExecCommand>),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecCommand {
    pub cmd: String,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub if_candidate: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_timeout: Option<GoDuration>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProxyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_forward: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lag: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_redirect_timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_header_timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<GoDuration>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseType {
    /// The node with `candidate: true` is the primary for good.
    Static,
    /// Consul elects the primary; it moves on failure or deploy.
    Consul,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LeaseConfig {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<LeaseType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_url: Option<String>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub candidate: Option<bool>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub promote: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_delay: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demote_delay: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConsulConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_delay: Option<GoDuration>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BackupConfig {
    /// `file` or `litefs-cloud`; empty means no backup.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LogConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<bool>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TracingConfig {
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Megabytes per trace file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    #[serde(
        default,
        deserialize_with = "gobool::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub compress: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl<'de> Deserialize<'de> for Exec {
    // Hand-written rather than `untagged`: untagged buffers the value and
    // loses serde_norway's line/column and key path in errors.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Exec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command line, or a list of {cmd, if-candidate}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Exec, E> {
                Ok(Exec::Command(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Exec, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element::<ExecCommand>()? {
                    list.push(item);
                }
                Ok(Exec::List(list))
            }
        }
        d.deserialize_any(V)
    }
}

impl LiteFsConfig {
    /// `fuse.dir`, the LiteFS mount directory.
    pub fn fuse_dir(&self) -> Option<&Path> {
        self.fuse.as_ref()?.dir.as_deref().map(Path::new)
    }

    /// `data.dir`, LiteFS's internal storage.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data.as_ref()?.dir.as_deref().map(Path::new)
    }

    /// `http.addr`, or LiteFS's default `:20202` when absent or empty.
    pub fn http_addr(&self) -> &str {
        match self.http.as_ref().and_then(|h| h.addr.as_deref()) {
            Some(a) if !a.is_empty() => a,
            _ => DEFAULT_HTTP_ADDR,
        }
    }

    pub fn lease_type(&self) -> Option<LeaseType> {
        self.lease.as_ref()?.kind
    }

    /// `lease.candidate`, which LiteFS defaults to true.
    pub fn is_candidate(&self) -> bool {
        self.lease.as_ref().and_then(|l| l.candidate).unwrap_or(true)
    }

    /// A copy fit to show to SQL clients or logs: `backup.auth-token` and
    /// the password part of every URL (the Consul token) become `xxxxx`.
    /// Unknown keys are kept as they are.
    pub fn redacted(&self) -> LiteFsConfig {
        let mut c = self.clone();
        let hide_url = |u: &mut Option<String>| {
            if let Some(v) = u.as_mut() {
                *v = redact_url(v);
            }
        };
        if let Some(l) = c.lease.as_mut() {
            hide_url(&mut l.advertise_url);
            if let Some(k) = l.consul.as_mut() {
                hide_url(&mut k.url);
            }
        }
        if let Some(b) = c.backup.as_mut() {
            hide_url(&mut b.url);
            if let Some(t) = b.auth_token.as_mut() {
                *t = "xxxxx".to_owned();
            }
        }
        c
    }

    /// Dotted paths of every key the model does not know, e.g.
    /// `fuse.alow-other`, `lease.consul.token`, `exec[1].env`.
    pub fn unknown_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |prefix: &str, extra: &Extra| {
            out.extend(extra.keys().map(|k| {
                if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                }
            }));
        };
        add("", &self.extra);
        if let Some(s) = &self.fuse {
            add("fuse", &s.extra);
        }
        if let Some(s) = &self.data {
            add("data", &s.extra);
        }
        if let Some(Exec::List(list)) = &self.exec {
            for (i, c) in list.iter().enumerate() {
                add(&format!("exec[{i}]"), &c.extra);
            }
        }
        if let Some(s) = &self.http {
            add("http", &s.extra);
        }
        if let Some(s) = &self.proxy {
            add("proxy", &s.extra);
        }
        if let Some(s) = &self.lease {
            add("lease", &s.extra);
            if let Some(c) = &s.consul {
                add("lease.consul", &c.extra);
            }
        }
        if let Some(s) = &self.backup {
            add("backup", &s.extra);
        }
        if let Some(s) = &self.log {
            add("log", &s.extra);
        }
        if let Some(s) = &self.tracing {
            add("tracing", &s.extra);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de(yaml: &str) -> Result<LiteFsConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn exec_is_a_string_or_a_list() {
        let c = de("exec: myapp -addr :8081").unwrap_or_default();
        assert_eq!(c.exec, Some(Exec::Command("myapp -addr :8081".into())));
        let c = de("exec:\n  - cmd: migrate\n    if-candidate: true\n  - cmd: serve\n").unwrap_or_default();
        assert_eq!(
            c.exec,
            Some(Exec::List(vec![
                ExecCommand {
                    cmd: "migrate".into(),
                    if_candidate: Some(true),
                    extra: Extra::new()
                },
                ExecCommand {
                    cmd: "serve".into(),
                    ..Default::default()
                },
            ]))
        );
    }

    #[test]
    fn exec_of_another_type_is_refused_with_location() {
        assert_eq!(
            de("exec: 12"),
            Err("exec: invalid type: integer `12`, expected a command line, or a list of {cmd, if-candidate} at line 1 column 7".into())
        );
        assert_eq!(
            de("exec:\n  - if-candidate: true\n"),
            Err("exec[0]: missing field `cmd` at line 2 column 5".into())
        );
    }

    #[test]
    fn unknown_keys_are_kept_and_listed() {
        let c = de("fuse:\n  dir: /litefs\n  alow-other: true\nlease:\n  consul:\n    token: x\nexec:\n  - cmd: a\n    env: b\nextra-top: 1\n")
            .unwrap_or_default();
        assert_eq!(
            c.unknown_keys(),
            vec![
                "extra-top",
                "fuse.alow-other",
                "exec[0].env",
                "lease.consul.token"
            ]
        );
        let fuse = c.fuse.unwrap_or_default();
        assert_eq!(
            fuse.extra.get("alow-other"),
            Some(&serde_norway::Value::Bool(true))
        );
    }

    #[test]
    fn typed_enums_name_the_choices() {
        assert_eq!(
            de("lease:\n  type: etcd\n"),
            Err(
                "lease.type: unknown variant `etcd`, expected `static` or `consul` at line 2 column 9".into()
            )
        );
        assert_eq!(
            de("log: {format: xml}"),
            Err("log.format: unknown variant `xml`, expected `text` or `json` at line 1 column 15".into())
        );
    }

    #[test]
    fn redaction_hides_tokens_only() {
        let c = de("lease:\n  consul:\n    url: https://:tok@consul:8501/a/\nbackup:\n  auth-token: secret\n  cluster: c\n")
            .unwrap_or_default();
        let r = c.redacted();
        let consul_url = r.lease.and_then(|l| l.consul).and_then(|k| k.url);
        assert_eq!(consul_url.as_deref(), Some("https://:xxxxx@consul:8501/a/"));
        let backup = r.backup.unwrap_or_default();
        assert_eq!(backup.auth_token.as_deref(), Some("xxxxx"));
        assert_eq!(backup.cluster.as_deref(), Some("c"));
    }

    #[test]
    fn defaults_follow_litefs() {
        let c = LiteFsConfig::default();
        assert_eq!(c.http_addr(), ":20202");
        assert!(c.is_candidate());
        assert_eq!(c.fuse_dir(), None);
    }
}
