//! `--k`: a fixed number of KMeans clusters, or `auto` (a sweep; see `cluster`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// KMeans k: a number, or `auto` (silhouette sweep).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KChoice {
    Auto,
    Fixed(u32),
}

impl std::str::FromStr for KChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(KChoice::Auto);
        }
        match s.trim().parse::<u32>() {
            Ok(k) if (1..=64).contains(&k) => Ok(KChoice::Fixed(k)),
            _ => Err(format!("`{s}` is not `auto` or a number from 1 to 64")),
        }
    }
}

impl fmt::Display for KChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KChoice::Auto => f.write_str("auto"),
            KChoice::Fixed(k) => write!(f, "{k}"),
        }
    }
}

impl Serialize for KChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}
