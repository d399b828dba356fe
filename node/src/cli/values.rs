//! Parsers of argument values: wire names, durations, lifetimes, sizes.

use std::time::Duration;

use serde::de::DeserializeOwned;

/// Parses a snake_case wire name, also written with dashes.
pub fn parse_wire<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    // Tables print kinds as words ("gag order"), so spaces are accepted like dashes.
    let wire = text.trim().to_lowercase().replace([' ', '-'], "_");
    serde_json::from_value(serde_json::Value::String(wire)).map_err(|error| {
        let error = error.to_string();
        match error.split_once("expected one of ") {
            Some((_, accepted)) => format!(
                "unknown value {text:?}; accepted: {}",
                accepted.replace('`', "").replace('_', "-")
            ),
            None => format!("unknown value {text:?} (see --help for the accepted values)"),
        }
    })
}

/// Parses a positive duration: `30d`, `12h`, `90m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!(
            "{text:?} is not a duration; give one such as 30d, 12h or 90m"
        )),
    }
}

/// How long something lasts: a duration, or for ever (`None`, typed `never`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime(pub Option<Duration>);

/// Parses a lifetime: a positive duration (`30d`, `12h`, `90m`) or `never`.
pub fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(Lifetime(None));
    }
    parse_duration(text)
        .map(|duration| Lifetime(Some(duration)))
        .map_err(|_| format!("{text:?} is not a lifetime; give 30d, 12h, 90m or never"))
}

/// Parses `50G`, `512M`, `1T`, `1024` (bytes); binary units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 50G"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::format_bytes;
    use solidarity_proto::payload::{AlertCategory, AlertStatus, Severity};

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("50G"), Ok(50 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("5X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_bytes(50 << 30), "50 GiB");
    }

    #[test]
    fn lifetimes_take_never_and_say_the_format() {
        assert_eq!(parse_lifetime("never"), Ok(Lifetime(None)));
        assert_eq!(
            parse_lifetime("12h"),
            Ok(Lifetime(Some(Duration::from_secs(12 * 3600))))
        );
        let error = parse_lifetime("forever").expect_err("not a lifetime");
        assert!(error.contains("30d, 12h, 90m or never"), "{error}");
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("never")
                .expect_err("no")
                .contains("30d, 12h or 90m")
        );
    }

    #[test]
    fn wire_names_accept_dashes() {
        assert_eq!(
            parse_wire::<AlertCategory>("legal-request"),
            Ok(AlertCategory::LegalRequest)
        );
        assert_eq!(
            parse_wire::<AlertStatus>("Confirmed"),
            Ok(AlertStatus::Confirmed)
        );
        assert!(parse_wire::<Severity>("apocalyptic").is_err());
    }
}
