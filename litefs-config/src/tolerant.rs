//! Readings of a litefs.yml that tolerate what the guard does not use.
//!
//! [`AnyYaml`] walks every value (aliases expanded, so the work budget sees
//! them) and keeps nothing: a duplicate key or an odd tag deep in a section
//! the guard never reads is not its business. [`MountOnly`] reads
//! `fuse.dir` alone, with the same string deserializer as the typed model,
//! so the two readings never disagree about the mount; any other shape
//! (no `fuse` mapping, a document that is not a mapping) reads as "no
//! fuse.dir".

use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::fmt;

/// Any YAML value, walked and dropped.
pub(crate) struct AnyYaml;

impl<'de> Deserialize<'de> for AnyYaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
}

struct AnyVisitor;

macro_rules! ignore_scalars {
    ($($method:ident($ty:ty);)*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<AnyYaml, E> {
            Ok(AnyYaml)
        })*
    };
}

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = AnyYaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    ignore_scalars! {
        visit_bool(bool);
        visit_i64(i64);
        visit_i128(i128);
        visit_u64(u64);
        visit_u128(u128);
        visit_f64(f64);
        visit_str(&str);
        visit_bytes(&[u8]);
    }

    fn visit_none<E: de::Error>(self) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_unit<E: de::Error>(self) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<AnyYaml, D::Error> {
        AnyYaml::deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<AnyYaml, D::Error> {
        AnyYaml::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyYaml, A::Error> {
        while seq.next_element::<AnyYaml>()?.is_some() {}
        Ok(AnyYaml)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyYaml, A::Error> {
        while map.next_entry::<AnyYaml, AnyYaml>()?.is_some() {}
        Ok(AnyYaml)
    }

    /// A tagged value (`!tag value`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<AnyYaml, A::Error> {
        let (AnyYaml, variant) = data.variant::<AnyYaml>()?;
        variant.newtype_variant::<AnyYaml>()
    }
}

/// `fuse.dir` alone; None when the document has none in a usable place.
pub(crate) struct MountOnly(pub Option<String>);

impl<'de> Deserialize<'de> for MountOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SectionVisitor { key: "fuse" })
    }
}

/// Finds `key` in a mapping; at the root it leads to `fuse`, inside `fuse`
/// to `dir`.
struct SectionVisitor {
    key: &'static str,
}

/// The `fuse` section: its `dir`.
struct FuseDir(Option<String>);

impl<'de> Deserialize<'de> for FuseDir {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SectionVisitor { key: "dir" })
            .map(|m| FuseDir(m.0))
    }
}

impl<'de> Visitor<'de> for SectionVisitor {
    type Value = MountOnly;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping with {}", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MountOnly, A::Error> {
        let mut found: Option<Option<String>> = None;
        while let Some(k) = map.next_key::<KeyName>()? {
            if k.0.as_deref() != Some(self.key) {
                map.next_value::<AnyYaml>()?;
                continue;
            }
            if found.is_some() {
                // As the typed model (and LiteFS) would: the key is ambiguous.
                return Err(de::Error::duplicate_field(self.key));
            }
            found = Some(if self.key == "dir" {
                map.next_value::<Option<String>>()?
            } else {
                map.next_value::<Option<FuseDir>>()?.and_then(|f| f.0)
            });
        }
        Ok(MountOnly(found.flatten()))
    }

    // Any other shape has no such key.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<MountOnly, E> {
        Ok(MountOnly(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<MountOnly, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MountOnly, A::Error> {
        while seq.next_element::<AnyYaml>()?.is_some() {}
        Ok(MountOnly(None))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<MountOnly, A::Error> {
        let (AnyYaml, variant) = data.variant::<AnyYaml>()?;
        variant.newtype_variant::<AnyYaml>()?;
        Ok(MountOnly(None))
    }
}

/// A mapping key, as text when it is text.
struct KeyName(Option<String>);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyName, E> {
                Ok(KeyName(Some(s.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
                Ok(KeyName(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyName, A::Error> {
                while seq.next_element::<AnyYaml>()?.is_some() {}
                Ok(KeyName(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyName, A::Error> {
                while map.next_entry::<AnyYaml, AnyYaml>()?.is_some() {}
                Ok(KeyName(None))
            }
        }
        d.deserialize_any(V)
    }
}
