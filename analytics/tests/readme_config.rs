//! The configuration sample in README.md parses, and says what the defaults say.

use serde::Deserialize;
use tidewatch_analytics::AnalyticsConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    analytics: AnalyticsConfig,
}

fn toml_block() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = readme[start..].find("```").expect("closed");
    readme[start..start + len].to_owned()
}

#[test]
fn the_readme_sample_parses_and_equals_the_defaults() {
    let file: File = toml::from_str(&toml_block()).unwrap();
    assert_eq!(file.analytics, AnalyticsConfig::default());
    file.analytics.validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(toml::from_str::<File>("[analytics.counters]\nmax_gap = \"1m\"").is_err());
    assert!(toml::from_str::<File>("[analytics.counters]\nmax_sample_gap = \"soon\"").is_err());
    assert!(toml::from_str::<File>("[analytics.pue]\nit_source = \"server_psu\"").is_err());
    let file: File = toml::from_str("[analytics.counters]\nspike_power_factor = -1").unwrap();
    assert!(file.analytics.validate().is_err());
}
