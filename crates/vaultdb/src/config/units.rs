//! The value types of `vaultdb.toml`: durations (`"500ms"`, `"30s"`), byte sizes
//! (`"16MiB"`) and the padding policy, with their parsers.

use std::time::Duration;

use serde::Deserialize;
use vaultdb_core::{Mode, Padding};

/// A number or a text, as written in the file. (Its name shows in the message for a value
/// that is neither: "data did not match any variant of untagged enum Raw".)
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Number(u64),
    Text(String),
}

/// A duration written as `"500ms"`, `"30s"`, `"2m"`, `"1h"` or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Number(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(Dur).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"` or a bare number of seconds.
///
/// # Errors
/// A message naming the text, for anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {text:?}"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("invalid duration {text:?} (use ms, s, m or h)")),
    };
    Ok(d)
}

/// A duration or `"off"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptDur(pub Option<Duration>);

impl<'de> Deserialize<'de> for OptDur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Number(s) => Ok(OptDur(Some(Duration::from_secs(s)))),
            Raw::Text(t) if t == "off" => Ok(OptDur(None)),
            Raw::Text(t) => {
                parse_duration(&t).map(|d| OptDur(Some(d))).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// A byte size written as a number of bytes or `"512KiB"`, `"16MiB"`, `"1GiB"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Number(b) => Ok(ByteSize(b)),
            Raw::Text(t) => parse_size(&t).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"123"`, `"512KiB"`, `"16MiB"`, `"1GiB"` (also `KB`/`MB`/`GB` as powers of 1000).
///
/// # Errors
/// A message naming the text, for anything else or a size over `u64::MAX`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("invalid size {text:?} (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {text:?} is too large"))
}

/// The padding policy as written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaddingSetting(pub Padding);

impl Default for PaddingSetting {
    fn default() -> Self {
        Self(Padding::Padme)
    }
}

impl<'de> Deserialize<'de> for PaddingSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        let p = match t.as_str() {
            "padme" => Padding::Padme,
            "none" => Padding::None,
            "power-of-two" => Padding::PowerOfTwo,
            other => match other.strip_prefix("block:").map(str::parse::<u32>) {
                Some(Ok(b)) if b > 0 => Padding::Block(b),
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "invalid padding {t:?}: use \"padme\", \"none\", \"power-of-two\" or \
                         \"block:<bytes>\""
                    )));
                }
            },
        };
        Ok(Self(p))
    }
}

/// The storage mode as written in the file: `"shamir"` or `"compact"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSetting(pub Mode);

impl<'de> Deserialize<'de> for ModeSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        t.parse().map(Self).map_err(|_| {
            serde::de::Error::custom(format!("invalid mode {t:?}: use \"shamir\" or \"compact\""))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("7 parsecs").is_err());
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert!(parse_size("lots").is_err());
    }
}
