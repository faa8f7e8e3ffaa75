//! The `[analytics.anomalies]` sample in README.md parses and says what the defaults say.

use serde::Deserialize;
use tidewatch_analytics::anomaly::AnomalyConfig;
use tidewatch_analytics::AnalyticsConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    analytics: AnalyticsConfig,
}

fn anomalies_block() -> String {
    let readme = include_str!("../README.md");
    let at = readme
        .find("```toml\n[analytics.anomalies]")
        .expect("the anomalies sample")
        + "```toml\n".len();
    let len = readme[at..].find("```").expect("closed");
    readme[at..at + len].to_owned()
}

#[test]
fn the_readme_sample_parses_and_equals_the_defaults() {
    let file: File = toml::from_str(&anomalies_block()).unwrap();
    assert_eq!(file.analytics.anomalies, AnomalyConfig::default());
    file.analytics.validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(toml::from_str::<File>("[analytics.anomalies]\nsupply_band = 2.0").is_err());
    assert!(toml::from_str::<File>("[analytics.anomalies]\nsupply_hold = \"soon\"").is_err());
    let file: File = toml::from_str("[analytics.anomalies]\nzscore_threshold = -1").unwrap();
    assert!(file.analytics.validate().is_err());
    let file: File = toml::from_str("[analytics.anomalies]\nsupply_hold = \"5m\"").unwrap();
    assert_eq!(file.analytics.anomalies.supply_hold.as_secs(), 300);
}
