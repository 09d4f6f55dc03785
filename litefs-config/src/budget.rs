//! A work budget for deserializing one document.
//!
//! serde_norway (serde_yaml 0.9's maintained fork, the same code here)
//! limits alias *jumps* to 100 × the number of events, which still lets a
//! 160 KB file of anchors and aliases expand into gigabytes and take minutes (measured: 2 GB / 7.7 s for 20k aliases to one 100 KB scalar;
//! 6.6 GB / 45 s for 5k aliases to one 10k-item list). Every value serde_norway
//! produces, alias replays included, goes through the wrapper below, which
//! counts nodes and scalar bytes and stops the parse when either runs out.
//! An alias-free file under the 1 MiB size cap never reaches the byte limit.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::cell::Cell;
use std::fmt;

/// `[`/`{` count × text length allowed before handing text to libyaml; see
/// `check_flow_brackets`.
pub const MAX_BRACKET_WORK: usize = 64 * 1024 * 1024;

/// A real litefs.yml has under a hundred values; LiteFS's reference file
/// about forty.
pub const MAX_NODES: usize = 10_000;
/// Scalar text produced, alias copies included.
pub const MAX_SCALAR_BYTES: usize = 4 * 1024 * 1024;

/// libyaml's scanner slows down quadratically on directly nested flow
/// collections (`[[[[…`, `{a: {a: …`: measured 3.6 s for 40k `[`, so a
/// 1 MiB file of them would run for most of an hour). serde_norway's depth
/// limit only applies after the whole text is scanned, so this bounds the
/// scan instead: the number of `[`/`{` anywhere in the text (quoted or not,
/// which can only over-count) times the text length. Real configs use a
/// handful of brackets; a 16 KiB file may have 4096.
pub(crate) fn check_flow_brackets(text: &str) -> Result<(), String> {
    let brackets = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    let limit = MAX_BRACKET_WORK / text.len().max(1);
    if brackets > limit {
        return Err(format!(
            "{brackets} '[' and '{{' characters in {} bytes is more than the YAML parser handles in bounded time (at most {limit} at this size)",
            text.len()
        ));
    }
    Ok(())
}

#[derive(Default)]
pub(crate) struct Budget {
    nodes: Cell<usize>,
    bytes: Cell<usize>,
}

impl Budget {
    fn node<E: de::Error>(&self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > MAX_NODES {
            return Err(E::custom(format_args!(
                "the document has more than {MAX_NODES} YAML values once aliases are expanded"
            )));
        }
        Ok(())
    }

    fn scalar<E: de::Error>(&self, len: usize) -> Result<(), E> {
        self.node()?;
        let b = self.bytes.get().saturating_add(len);
        self.bytes.set(b);
        if b > MAX_SCALAR_BYTES {
            return Err(E::custom(format_args!(
                "the document has more than {MAX_SCALAR_BYTES} bytes of text once aliases are expanded"
            )));
        }
        Ok(())
    }
}

/// Wraps a deserializer so everything below it is charged to `budget`.
pub(crate) struct Limited<'b, D> {
    pub inner: D,
    pub budget: &'b Budget,
}

struct Counted<'b, V> {
    inner: V,
    budget: &'b Budget,
}

struct Seed<'b, S> {
    inner: S,
    budget: &'b Budget,
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* Counted { inner: visitor, budget: self.budget })
        })*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_scalar {
    ($($method:ident($ty:ty);)*) => {
        $(fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.budget.node()?;
            self.inner.$method(v)
        })*
    };
}

macro_rules! forward_text {
    ($($method:ident($ty:ty);)*) => {
        $(fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.budget.scalar(v.len())?;
            self.inner.$method(v)
        })*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Counted<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_scalar! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
    }

    forward_text! {
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.budget.node()?;
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.budget.node()?;
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.budget.node()?;
        self.inner.visit_some(Limited {
            inner: d,
            budget: self.budget,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.budget.node()?;
        self.inner.visit_newtype_struct(Limited {
            inner: d,
            budget: self.budget,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.budget.node()?;
        self.inner.visit_seq(Counted {
            inner: seq,
            budget: self.budget,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.budget.node()?;
        self.inner.visit_map(Counted {
            inner: map,
            budget: self.budget,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.budget.node()?;
        self.inner.visit_enum(Counted {
            inner: data,
            budget: self.budget,
        })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Limited {
            inner: d,
            budget: self.budget,
        })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Counted<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Seed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Counted<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Seed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Seed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'b, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Counted<'b, A> {
    type Error = A::Error;
    type Variant = Counted<'b, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let (value, variant) = self.inner.variant_seed(Seed { inner: seed, budget })?;
        Ok((
            value,
            Counted {
                inner: variant,
                budget,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Counted<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Seed {
            inner: seed,
            budget: self.budget,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(
            len,
            Counted {
                inner: visitor,
                budget: self.budget,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(
            fields,
            Counted {
                inner: visitor,
                budget: self.budget,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn limited<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        let budget = Budget::default();
        T::deserialize(Limited {
            inner: serde_norway::Deserializer::from_str(yaml),
            budget: &budget,
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn passes_ordinary_documents_through_unchanged() {
        let yaml = "a: [1, -2, 3.5, true, ~, \"s\"]\nb: {c: !t x}\n";
        let plain: Result<serde_norway::Value, _> = serde_norway::from_str(yaml);
        assert_eq!(
            limited::<serde_norway::Value>(yaml),
            plain.map_err(|e| e.to_string())
        );
    }

    #[test]
    fn stops_list_alias_fan_out() {
        // 5,000 aliases to a 100-item list: 505,000 values once expanded.
        let mut yaml = format!("a: &a [{}]\n", "x,".repeat(100));
        for i in 0..5_000 {
            yaml.push_str(&format!("k{i}: *a\n"));
        }
        let err = limited::<serde_norway::Value>(&yaml).err().unwrap_or_default();
        assert!(
            err.starts_with("k97[1]: the document has more than 10000 YAML values once aliases are expanded"),
            "{err}"
        );
    }

    #[test]
    fn bracket_check_scales_with_size() {
        assert_eq!(check_flow_brackets("a: [b]"), Ok(()));
        assert_eq!(check_flow_brackets(""), Ok(()));
        assert_eq!(check_flow_brackets(&"[".repeat(8000)), Ok(()));
        assert_eq!(
            check_flow_brackets(&"[".repeat(8200)),
            Err("8200 '[' and '{' characters in 8200 bytes is more than the YAML parser handles in bounded time (at most 8184 at this size)".into())
        );
    }

    #[test]
    fn stops_scalar_alias_fan_out() {
        let mut yaml = format!("a: &a \"{}\"\nb: [", "x".repeat(100_000));
        yaml.push_str(&"*a,".repeat(100));
        yaml.push_str("]\n");
        let err = limited::<serde_norway::Value>(&yaml).err().unwrap_or_default();
        assert!(
            err.starts_with(
                "b[40]: the document has more than 4194304 bytes of text once aliases are expanded"
            ),
            "{err}"
        );
    }
}
