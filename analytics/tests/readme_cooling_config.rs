//! The `[analytics.cooling]` sample in README.md's "Cooling" section parses, and says
//! what the defaults say.

use serde::Deserialize;
use tidewatch_analytics::cooling::CoolingConfig;
use tidewatch_analytics::AnalyticsConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    analytics: AnalyticsConfig,
}

fn cooling_block() -> String {
    let readme = include_str!("../README.md");
    let section = readme.find("\n## Cooling\n").expect("a Cooling section");
    let rest = &readme[section..];
    let start = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = rest[start..].find("```").expect("closed");
    rest[start..start + len].to_owned()
}

#[test]
fn the_readme_cooling_sample_parses_and_equals_the_defaults() {
    let file: File = toml::from_str(&cooling_block()).unwrap();
    assert_eq!(file.analytics.cooling, CoolingConfig::default());
    file.analytics.cooling.validate().unwrap();
}

#[test]
fn unknown_cooling_keys_and_bad_values_are_refused() {
    assert!(toml::from_str::<File>("[analytics.cooling]\nmax_gap = \"1m\"").is_err());
    assert!(toml::from_str::<File>("[analytics.cooling.glycol]\ncp_kj_per_kg_k = 3.9").is_err());
    let file: File = toml::from_str("[analytics.cooling]\ndew_point_warning_k = -1.0").unwrap();
    assert!(file.analytics.cooling.validate().is_err());
}
