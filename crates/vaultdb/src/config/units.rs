//! The value types of `vaultdb.toml`: durations (`"500ms"`, `"0.05s"`, `"1d"`, `"1h 30m"`),
//! byte sizes (`"16MiB"`, `"1.5GB"`) and the padding policy. Durations are parsed by the
//! `humantime` crate, sizes by the `bytesize` crate; a bare number is seconds or bytes.

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

/// A duration written as `"500ms"`, `"0.05s"`, `"30s"`, `"2m"`, `"1h 30m"`, `"1d"` or a
/// number of seconds.
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

/// Parses a duration: a bare number of seconds, or `humantime`'s format: numbers with
/// units (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w`, and their long names), fractions
/// allowed (`"0.05s"`), several parts summed (`"1h 30m"`).
///
/// # Errors
/// A message naming the text, for anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {text:?}"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write e.g. \"500ms\", \"0.05s\", \"30s\", \"2m\", \"1h 30m\", \"1d\")")
    })
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

/// A byte size written as a number of bytes or `"512KiB"`, `"16MiB"`, `"1.5GiB"`, `"1GB"`.
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

/// Parses a byte size with the `bytesize` crate: `"123"`, `"512KiB"`, `"16MiB"`,
/// `"1.5GiB"` (binary units), `"16MB"` (decimal: powers of 1000), spaces allowed.
///
/// # Errors
/// A message naming the text, for anything else.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim().parse::<bytesize::ByteSize>().map(|b| b.as_u64()).map_err(|e| {
        format!("invalid size {text:?}: {e} (write e.g. \"4096\", \"512KiB\", \"16MiB\", \"1GiB\")")
    })
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
        assert_eq!(parse_duration("0.05s").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("7 parsecs").unwrap_err().contains("7 parsecs"));
        assert!(parse_duration("").is_err());
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("1.5 KiB").unwrap(), 1536);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert!(parse_size("lots").unwrap_err().contains("lots"));
    }
}
