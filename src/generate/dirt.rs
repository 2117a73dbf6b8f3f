//! The dirt `generate` plants: duplicates, missing values, malformed mobiles.
//!
//! Rates are configurable (DESIGN §3 defaults); the tokens and formats mimic
//! what real exports contain, so extract is exercised on all of them.

use rand::RngExt;

use crate::rng::Rng;

/// Rates of each kind of dirt, each in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Dirt {
    pub duplicate_rate: f64,
    pub missing_age_rate: f64,
    pub missing_income_rate: f64,
    pub malformed_mobile_rate: f64,
}

impl Default for Dirt {
    /// DESIGN §3's defaults; config, tests and benches all start from these.
    fn default() -> Self {
        Dirt {
            duplicate_rate: 0.05,
            missing_age_rate: 0.10,
            missing_income_rate: 0.02,
            malformed_mobile_rate: 0.01,
        }
    }
}

/// How a missing value is spelled; DESIGN §3 lists the accepted tokens.
pub fn missing_token(rng: &mut Rng) -> &'static str {
    const TOKENS: [&str; 6] = ["", "", "", "NA", "null", "None"];
    TOKENS[rng.random_range(0..TOKENS.len())]
}

/// A mobile that extract must reject: blank, too short, or with letters.
pub fn malformed_mobile(rng: &mut Rng, good: &str) -> String {
    match rng.random_range(0..3) {
        0 => String::new(),
        1 => good[..good.len().min(8)].to_owned(),
        _ => {
            let mut s: String = good.chars().take(good.len() - 2).collect();
            s.push_str("OX");
            s
        }
    }
}

/// The same mobile written the way another system would (same digits).
pub fn reformat_mobile(rng: &mut Rng, canonical: &str) -> String {
    // canonical is "+91" followed by 10 digits.
    let d = canonical.trim_start_matches('+');
    let (cc, rest) = d.split_at(2);
    let (a, b) = rest.split_at(5);
    match rng.random_range(0..4) {
        0 => format!("+{cc} {a} {b}"),
        1 => format!("{cc}-{a}-{b}"),
        2 => format!("(+{cc}) {rest}"),
        _ => d.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobile;
    use crate::rng::seeded;

    #[test]
    fn reformatted_mobiles_normalize_to_the_same_key_and_malformed_ones_fail() {
        let mut rng = seeded(1, "t");
        let good = "+919876543210";
        for _ in 0..100 {
            let other = reformat_mobile(&mut rng, good);
            assert_eq!(
                mobile::normalize(&other),
                mobile::normalize(good),
                "{other}"
            );
            let bad = malformed_mobile(&mut rng, good);
            assert!(mobile::normalize(&bad).is_err(), "{bad}");
        }
    }
}
