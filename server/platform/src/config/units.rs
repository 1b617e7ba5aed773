//! Human units used across the spec's files: sizes ("100MB") and durations ("24h", "7y").

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, de};

/// A size in bytes written as `<number><unit>`; units are binary (KB = 1024 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (number, unit) = split_number(s)?;
        let factor: u64 = match unit.to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "KB" | "KIB" | "K" => 1 << 10,
            "MB" | "MIB" | "M" => 1 << 20,
            "GB" | "GIB" | "G" => 1 << 30,
            "TB" | "TIB" | "T" => 1 << 40,
            _ => {
                return Err(format!(
                    "invalid size \"{s}\": unknown unit \"{unit}\" (use B, KB, MB, GB or TB)"
                ));
            }
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size \"{s}\": too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TB", 1 << 40),
            ("GB", 1 << 30),
            ("MB", 1 << 20),
            ("KB", 1 << 10),
        ];
        for (unit, factor) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// A duration written as `<number><unit>` with unit ms, s, m (minutes), h, d, w or y (365 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    pub const fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (number, unit) = split_number(s)?;
        let millis: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            "" => {
                return Err(format!(
                    "invalid duration \"{s}\": missing unit (use ms, s, m, h, d, w or y)"
                ));
            }
            _ => {
                return Err(format!(
                    "invalid duration \"{s}\": unknown unit \"{unit}\" (use ms, s, m, h, d, w or y)"
                ));
            }
        };
        number
            .checked_mul(millis)
            .map(|ms| Span(Duration::from_millis(ms)))
            .ok_or_else(|| format!("invalid duration \"{s}\": too large"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        const UNITS: [(&str, u128); 5] = [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        for (unit, factor) in UNITS {
            if ms >= factor && ms.is_multiple_of(factor) {
                return write!(f, "{}{unit}", ms / factor);
            }
        }
        write!(f, "0s")
    }
}

fn split_number(s: &str) -> Result<(u64, &str), String> {
    let trimmed = s.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "invalid value \"{s}\": expected a number followed by a unit"
        ));
    }
    let (number, unit) = trimmed.split_at(digits);
    let number = number
        .parse::<u64>()
        .map_err(|_| format!("invalid value \"{s}\": number too large"))?;
    Ok((number, unit.trim()))
}

macro_rules! deserialize_from_str {
    ($ty:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        Err(E::custom(format!(
                            "{v} has no unit; write it as a string such as \"{v}s\" or \"{v}MB\""
                        )))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        Err(E::custom(format!("{v} has no unit")))
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

deserialize_from_str!(ByteSize, "a size such as \"100MB\"");
deserialize_from_str!(Span, "a duration such as \"30s\", \"24h\" or \"7y\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_the_spec_parse_as_binary_units() {
        assert_eq!("100MB".parse::<ByteSize>(), Ok(ByteSize(100 * 1024 * 1024)));
        assert_eq!(
            "50MB".parse::<ByteSize>().map(|s| s.to_string()),
            Ok("50MB".to_string())
        );
        assert_eq!("512".parse::<ByteSize>(), Ok(ByteSize(512)));
    }

    #[test]
    fn a_size_with_an_unknown_unit_is_rejected_with_the_unit_named() {
        let err = "100XB".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("unknown unit \"XB\""), "{err}");
        assert!("MB".parse::<ByteSize>().is_err());
        assert!("99999999999999999999GB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn durations_in_the_spec_parse() {
        assert_eq!(
            "24h".parse::<Span>(),
            Ok(Span(Duration::from_secs(24 * 3600)))
        );
        assert_eq!(
            "168h".parse::<Span>(),
            Ok(Span(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!("1m".parse::<Span>(), Ok(Span(Duration::from_secs(60))));
        assert_eq!(
            "7y".parse::<Span>(),
            Ok(Span(Duration::from_secs(7 * 365 * 86_400)))
        );
        assert_eq!(
            "90d".parse::<Span>().map(|s| s.to_string()),
            Ok("90d".to_string())
        );
    }

    #[test]
    fn a_duration_without_a_unit_is_rejected() {
        assert!("30".parse::<Span>().unwrap_err().contains("missing unit"));
        assert!(
            "3 fortnights"
                .parse::<Span>()
                .unwrap_err()
                .contains("unknown unit")
        );
    }
}
