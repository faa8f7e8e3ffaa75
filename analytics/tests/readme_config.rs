//! The configuration samples in README.md parse: the settings sample says what the
//! defaults say, and the tariff sample is a complete, valid table.

use serde::Deserialize;
use tidewatch_analytics::{AnalyticsConfig, TariffTable, TouPeriod};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    analytics: AnalyticsConfig,
}

/// Every ```toml block of the README, in order.
fn toml_blocks() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut out = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let len = body.find("```").expect("closed");
        out.push(body[..len].to_owned());
        rest = &body[len + 3..];
    }
    out
}

/// The one block with a line that is `marker` (a table header).
fn block_with(marker: &str) -> String {
    let blocks = toml_blocks();
    let found: Vec<&String> = blocks
        .iter()
        .filter(|b| b.lines().any(|l| l.trim_end() == marker))
        .collect();
    assert_eq!(found.len(), 1, "one toml block with {marker:?}");
    found[0].clone()
}

#[test]
fn the_readme_sample_parses_and_equals_the_defaults() {
    let file: File = toml::from_str(&block_with("[analytics.counters]")).unwrap();
    assert_eq!(file.analytics, AnalyticsConfig::default());
    file.analytics.validate().unwrap();
}

#[test]
fn the_readme_tariff_sample_is_a_complete_table() {
    let file: File = toml::from_str(&block_with("[[analytics.tariff]]")).unwrap();
    file.analytics.validate().unwrap();
    let tariffs = &file.analytics.tariffs;
    assert_eq!(tariffs.len(), 1);
    TariffTable::compile(tariffs).unwrap();
    // Every one of the five periods is priced and used by some row.
    for period in TouPeriod::ALL {
        assert!(tariffs[0].prices.contains_key(period.name()), "{period:?}");
        assert!(
            tariffs[0].rows.iter().any(|r| r.period == period.name()),
            "{period:?}"
        );
    }
    // The domain reference's deep valley and peak prices.
    assert_eq!(tariffs[0].prices["deep_valley"], 0.22);
    assert_eq!(tariffs[0].prices["peak"], 0.89);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(toml::from_str::<File>("[analytics.counters]\nmax_gap = \"1m\"").is_err());
    assert!(toml::from_str::<File>("[analytics.counters]\nmax_sample_gap = \"soon\"").is_err());
    assert!(toml::from_str::<File>("[analytics.pue]\nit_source = \"server_psu\"").is_err());
    assert!(toml::from_str::<File>("[analytics.carbon]\nfactor = 0.6").is_err());
    assert!(toml::from_str::<File>("[analytics.demand]\ninterval = \"soon\"").is_err());
    let file: File = toml::from_str("[analytics.counters]\nspike_power_factor = -1").unwrap();
    assert!(file.analytics.validate().is_err());
    let file: File = toml::from_str("[analytics.carbon]\nkg_co2_per_kwh = -0.6").unwrap();
    assert!(file.analytics.validate().is_err());
}
