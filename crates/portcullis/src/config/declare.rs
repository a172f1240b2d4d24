//! The machinery behind [`config_keys!`]: one declaration per key, from which the `Config`
//! struct, its defaults, the list of keys the environment may set, the numeric range checks and
//! the README's table all follow, so none of them can drift from the others.

use std::fmt;
use std::ops::{Bound, RangeBounds};

/// Declares every configuration key. Each entry is its documentation (a doc comment, which is
/// the field's rustdoc and the README's description at once), then
///
/// `name: Type = default [, shown "text"] [, range LO..=HI | LO..] [, serde(...)];`
///
/// - `shown`: how the README shows a default that is unset or empty but means something (such
///   as `<data>/master.key`); other defaults are shown as they serialise.
/// - `range`: the accepted values of a numeric key, checked at load with an error naming the
///   key. Rules that involve other keys stay in `validate.rs`.
/// - `serde(...)`: attributes for the field, such as redacting a secret when it is shown.
macro_rules! config_keys {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = $default:expr
        $(, shown $shown:literal)?
        $(, range $range:expr)?
        $(, serde($($serde:tt)*))?
        ;
    )*) => {
        /// Every setting, as declared in `config/keys.rs`. Field names are the TOML keys;
        /// `PORTCULLIS_<KEY>` in the environment overrides.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])?
                pub $name: $ty,
            )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($name: $default,)* }
            }
        }

        /// Every key, in declaration order: what the environment may set as `PORTCULLIS_<KEY>`.
        pub const KEYS: &[&str] = &[$(stringify!($name)),*];

        impl Config {
            /// The declared range of every numeric key that has one; the first value outside
            /// its range is refused, naming its key.
            pub(super) fn check_ranges(&self) -> anyhow::Result<()> {
                $($(
                    $crate::config::declare::check_range(
                        stringify!($name),
                        self.$name,
                        $crate::config::declare::bounds::<$ty, _>($range),
                    )?;
                )?)*
                Ok(())
            }
        }

        /// Every key as the documentation shows it.
        #[cfg(test)]
        pub(super) fn key_docs() -> Vec<$crate::config::declare::KeyDoc> {
            vec![$($crate::config::declare::KeyDoc {
                name: stringify!($name),
                doc: &[$($doc),*],
                kind: <$ty as $crate::config::declare::Kind>::NAME,
                shown: $crate::config::declare::opt!($(Some($shown))?),
                bounds: $crate::config::declare::opt!($(Some($crate::config::declare::bounds::<$ty, _>($range)))?),
            }),*]
        }
    };
}
pub(super) use config_keys;

/// `None`, or the one optional part of a declaration that was given.
#[cfg(test)]
macro_rules! opt {
    () => {
        None
    };
    ($e:expr) => {
        $e
    };
}
#[cfg(test)]
pub(super) use opt;

/// A numeric key's accepted values, widened so every integer type shares one check and one
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub lo: Option<i128>,
    pub hi: Option<i128>,
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.lo, self.hi) {
            (Some(lo), Some(hi)) => write!(f, "from {lo} to {hi}"),
            (Some(lo), None) => write!(f, "at least {lo}"),
            (None, Some(hi)) => write!(f, "at most {hi}"),
            (None, None) => write!(f, "any number"),
        }
    }
}

/// An integer type a key may have, widened losslessly.
pub trait Wide: Copy {
    fn wide(self) -> i128;
}

macro_rules! wide_from {
    ($($t:ty),*) => {$(
        impl Wide for $t {
            fn wide(self) -> i128 {
                i128::from(self)
            }
        }
    )*};
}
wide_from!(i64, u64, u32);

impl Wide for usize {
    fn wide(self) -> i128 {
        // usize is at most 64 bits on every supported target, so this never saturates.
        i128::try_from(self).unwrap_or(i128::MAX)
    }
}

/// The bounds of a declared range (`LO..=HI`, `LO..`), typed by the key so a bound the key's
/// type cannot hold does not compile.
pub fn bounds<T: Wide, R: RangeBounds<T>>(r: R) -> Bounds {
    let lo = match r.start_bound() {
        Bound::Included(v) => Some(v.wide()),
        Bound::Excluded(v) => Some(v.wide() + 1),
        Bound::Unbounded => None,
    };
    let hi = match r.end_bound() {
        Bound::Included(v) => Some(v.wide()),
        Bound::Excluded(v) => Some(v.wide() - 1),
        Bound::Unbounded => None,
    };
    Bounds { lo, hi }
}

/// `v` within `b`, else an error naming `key` and its range.
pub fn check_range<T: Wide>(key: &str, v: T, b: Bounds) -> anyhow::Result<()> {
    let v = v.wide();
    if b.lo.is_some_and(|lo| v < lo) || b.hi.is_some_and(|hi| v > hi) {
        anyhow::bail!("key `{key}`: must be {b}");
    }
    Ok(())
}

/// What kind of value a key takes, in the README's words.
#[cfg(test)]
pub trait Kind {
    const NAME: &'static str;
}

#[cfg(test)]
macro_rules! kind {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        impl Kind for $t {
            const NAME: &'static str = $name;
        }
    )*};
}
#[cfg(test)]
kind!(
    bool => "boolean",
    i64 => "integer",
    u64 => "integer",
    u32 => "integer",
    usize => "integer",
    String => "string",
    std::path::PathBuf => "path",
    secrecy::SecretString => "secret string",
    Vec<String> => "list",
);

#[cfg(test)]
impl<T: Kind> Kind for Option<T> {
    const NAME: &'static str = T::NAME;
}

/// One key as the documentation shows it.
#[cfg(test)]
#[derive(Debug)]
pub struct KeyDoc {
    pub name: &'static str,
    pub doc: &'static [&'static str],
    pub kind: &'static str,
    pub shown: Option<&'static str>,
    pub bounds: Option<Bounds>,
}

#[cfg(test)]
impl KeyDoc {
    /// The doc comment as one line of Markdown.
    pub fn description(&self) -> String {
        self.doc.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }

    /// The type column: the kind, and the range if there is one.
    pub fn type_shown(&self) -> String {
        match self.bounds {
            Some(b) => format!("{}, {b}", self.kind),
            None => self.kind.to_string(),
        }
    }
}

/// A default as the README shows it: `shown` if declared, else the serialised value.
#[cfg(test)]
pub fn default_shown(key: &KeyDoc, value: &serde_json::Value) -> String {
    use serde_json::Value;
    if let Some(s) = key.shown {
        return s.to_string();
    }
    match value {
        Value::Null => "unset".into(),
        Value::String(s) => format!("`{s}`"),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Array(items) => {
            let items: Vec<String> =
                items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect();
            format!("`{}`", items.join(", "))
        }
        Value::Bool(b) => format!("`{b}`"),
        other => other.to_string(),
    }
}

/// The README's table of keys: name, environment variable, type (and range), default and
/// description, one row per key in declaration order.
#[cfg(test)]
pub fn markdown_table(keys: &[KeyDoc], defaults: &serde_json::Value) -> String {
    let mut out =
        String::from("| key | environment variable | type | default | description |\n|---|---|---|---|---|\n");
    for k in keys {
        let default = default_shown(k, defaults.get(k.name).unwrap_or(&serde_json::Value::Null));
        out.push_str(&format!(
            "| `{}` | `PORTCULLIS_{}` | {} | {} | {} |\n",
            k.name,
            k.name.to_ascii_uppercase(),
            k.type_shown(),
            default.replace('|', "\\|"),
            k.description().replace('|', "\\|"),
        ));
    }
    out
}
