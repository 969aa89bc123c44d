//! Who a perspective is: its identifier and the Regional Internet Registry its network sits in (BR 3.2.2.9).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Regional Internet Registry service region (BR 3.2.2.9 requires corroborating remotes in at
/// least two of them from 2026-03-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rir {
    /// American Registry for Internet Numbers.
    Arin,
    /// Réseaux IP Européens Network Coordination Centre.
    RipeNcc,
    /// Asia-Pacific Network Information Centre.
    Apnic,
    /// Latin America and Caribbean Network Information Centre.
    Lacnic,
    /// African Network Information Centre.
    Afrinic,
}

impl Rir {
    /// Every RIR, in a fixed order.
    pub const ALL: [Rir; 5] = [
        Rir::Arin,
        Rir::RipeNcc,
        Rir::Apnic,
        Rir::Lacnic,
        Rir::Afrinic,
    ];

    /// The wire and config spelling: `ARIN`, `RIPE`, `APNIC`, `LACNIC`, `AFRINIC`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rir::Arin => "ARIN",
            Rir::RipeNcc => "RIPE",
            Rir::Apnic => "APNIC",
            Rir::Lacnic => "LACNIC",
            Rir::Afrinic => "AFRINIC",
        }
    }
}

impl fmt::Display for Rir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of `ARIN`, `RIPE`, `APNIC`, `LACNIC`, `AFRINIC`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown RIR {0:?}: expected one of ARIN, RIPE, APNIC, LACNIC, AFRINIC")]
pub struct UnknownRir(pub String);

impl FromStr for Rir {
    type Err = UnknownRir;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // "RIPE NCC" is the registry's full name; accept it as well as the short form.
        match s.to_ascii_uppercase().as_str() {
            "ARIN" => Ok(Rir::Arin),
            "RIPE" | "RIPE NCC" | "RIPENCC" | "RIPE_NCC" => Ok(Rir::RipeNcc),
            "APNIC" => Ok(Rir::Apnic),
            "LACNIC" => Ok(Rir::Lacnic),
            "AFRINIC" => Ok(Rir::Afrinic),
            _ => Err(UnknownRir(s.to_owned())),
        }
    }
}

impl Serialize for Rir {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Rir {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Longest perspective identifier we accept, in bytes (it appears in every log line and result).
pub const MAX_PERSPECTIVE_ID_LEN: usize = 64;

/// A perspective's stable identifier (BR 5.4.1 requires a unique one per perspective in the logs):
/// 1–64 characters from `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PerspectiveId(String);

/// The text cannot be a perspective identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid perspective id {0:?}: use 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")]
pub struct InvalidPerspectiveId(pub String);

impl PerspectiveId {
    /// Checks and wraps an identifier.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidPerspectiveId> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= MAX_PERSPECTIVE_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidPerspectiveId(id))
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PerspectiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PerspectiveId {
    type Err = InvalidPerspectiveId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for PerspectiveId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PerspectiveId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rir_parses_each_spelling() {
        for (text, rir) in [
            ("ARIN", Rir::Arin),
            ("ripe", Rir::RipeNcc),
            ("RIPE NCC", Rir::RipeNcc),
            ("APNIC", Rir::Apnic),
            ("LACNIC", Rir::Lacnic),
            ("AfriNIC", Rir::Afrinic),
        ] {
            assert_eq!(text.parse::<Rir>(), Ok(rir), "{text}");
        }
        assert_eq!("IANA".parse::<Rir>(), Err(UnknownRir("IANA".into())));
    }

    #[test]
    fn rir_round_trips_through_as_str() {
        for rir in Rir::ALL {
            assert_eq!(rir.as_str().parse::<Rir>(), Ok(rir));
        }
    }

    #[test]
    fn perspective_id_rules() {
        assert!(PerspectiveId::new("fra-1.colo_a").is_ok());
        assert!(PerspectiveId::new("").is_err());
        assert!(PerspectiveId::new("has space").is_err());
        assert!(PerspectiveId::new("x".repeat(65)).is_err());
        assert!(PerspectiveId::new("x".repeat(64)).is_ok());
    }
}
