//! The one seed a run derives all its randomness from: `SOLIDARITY_SEED` when set, else a
//! fixed default, printed so that a failing run replays exactly.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// The environment variable that replays a run.
pub const SEED_VARIABLE: &str = "SOLIDARITY_SEED";
/// The seed of a run that names none.
pub const DEFAULT_SEED: u64 = 12;

/// Why `SOLIDARITY_SEED` could not be used.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSeed(pub String);

impl std::fmt::Display for BadSeed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{SEED_VARIABLE}={:?} is not a u64", self.0)
    }
}

impl std::error::Error for BadSeed {}

/// Parses a seed as given in the environment (decimal, or hex with `0x`).
pub fn parse_seed(text: &str) -> Result<u64, BadSeed> {
    let trimmed = text.trim();
    let parsed = match trimmed.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => trimmed.parse(),
    };
    parsed.map_err(|_| BadSeed(text.to_owned()))
}

/// The run's seed, printed with the line that replays it. A malformed variable is an error
/// rather than a silent fallback, so that a replay never runs another seed.
pub fn run_seed(test: &str) -> Result<u64, BadSeed> {
    let seed = match std::env::var(SEED_VARIABLE) {
        Ok(text) => parse_seed(&text)?,
        Err(_) => DEFAULT_SEED,
    };
    println!("{test}: seed {seed} (replay with {SEED_VARIABLE}={seed})");
    Ok(seed)
}

/// The generator of a seed.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn seeds_parse_in_decimal_and_hex_and_refuse_the_rest() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed(" 0x2a\n"), Ok(42));
        assert!(parse_seed("forty-two").is_err());
        assert!(parse_seed("-1").is_err());
    }

    #[test]
    fn one_seed_gives_one_sequence() {
        let mut a = rng(7);
        let mut b = rng(7);
        let a: Vec<u64> = (0..4).map(|_| a.r#gen()).collect();
        let b: Vec<u64> = (0..4).map(|_| b.r#gen()).collect();
        assert_eq!(a, b);
        let mut other = rng(8);
        assert_ne!(a[0], other.r#gen::<u64>());
    }
}
