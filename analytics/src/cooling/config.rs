//! The cooling analysis' settings (`[analytics.cooling]`): sampling rules, dew-point
//! thresholds and the coolants' properties, every number a default from domain.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidewatch_devices::Coolant;

use crate::error::AnalyticsError;

/// How the loops' samples are read and judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoolingConfig {
    /// The longest time between two usable samples that is still covered (the value
    /// is interpolated linearly across it); longer is a gap. Default 5 minutes.
    #[serde(
        default = "default_max_sample_gap",
        with = "crate::config::duration_text"
    )]
    pub max_sample_gap: Duration,
    /// Length of the intervals of the capture-ratio trend, counted from the window's
    /// start. Default 1 hour.
    #[serde(default = "default_interval", with = "crate::config::duration_text")]
    pub interval: Duration,
    /// Two redundant supply sensors further apart than this, K, give no supply
    /// temperature for the sample (which one is right is unknown); with three, the
    /// median is used. Default 1 K (domain.md: spread > 1 C is a sensor fault).
    #[serde(default = "default_max_sensor_spread_k")]
    pub max_sensor_spread_k: f64,
    /// Dew-point margin below this, K, is a warning (default 2 K).
    #[serde(default = "default_dew_point_warning_k")]
    pub dew_point_warning_k: f64,
    /// Dew-point margin at or below this, K, is critical: condensation (default 0 K).
    #[serde(default = "default_dew_point_critical_k")]
    pub dew_point_critical_k: f64,
    /// A room dew-point reading older than this is not paired with a CDU sample.
    /// Default 5 minutes (the sensors publish every 10 s).
    #[serde(
        default = "default_dew_point_max_age",
        with = "crate::config::duration_text"
    )]
    pub dew_point_max_age: Duration,
    /// The approach trend (K per day) needs samples spanning at least this long.
    /// Default 12 hours.
    #[serde(
        default = "default_trend_min_span",
        with = "crate::config::duration_text"
    )]
    pub trend_min_span: Duration,
    /// Properties of water.
    #[serde(default = "CoolantProperties::water")]
    pub water: CoolantProperties,
    /// Properties of 25 % propylene glycol.
    #[serde(default = "CoolantProperties::pg25")]
    pub pg25: CoolantProperties,
}

impl Default for CoolingConfig {
    fn default() -> Self {
        CoolingConfig {
            max_sample_gap: default_max_sample_gap(),
            interval: default_interval(),
            max_sensor_spread_k: default_max_sensor_spread_k(),
            dew_point_warning_k: default_dew_point_warning_k(),
            dew_point_critical_k: default_dew_point_critical_k(),
            dew_point_max_age: default_dew_point_max_age(),
            trend_min_span: default_trend_min_span(),
            water: CoolantProperties::water(),
            pg25: CoolantProperties::pg25(),
        }
    }
}

/// Default `max_sample_gap`: 5 minutes.
pub fn default_max_sample_gap() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Default `interval`: 1 hour.
pub fn default_interval() -> Duration {
    Duration::from_secs(3600)
}

/// Default `max_sensor_spread_k`: 1 K.
pub fn default_max_sensor_spread_k() -> f64 {
    1.0
}

/// Default `dew_point_warning_k`: 2 K.
pub fn default_dew_point_warning_k() -> f64 {
    2.0
}

/// Default `dew_point_critical_k`: 0 K.
pub fn default_dew_point_critical_k() -> f64 {
    0.0
}

/// Default `dew_point_max_age`: 5 minutes.
pub fn default_dew_point_max_age() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Default `trend_min_span`: 12 hours.
pub fn default_trend_min_span() -> Duration {
    Duration::from_secs(12 * 3600)
}

/// A coolant's density and specific heat, linear in temperature around a reference:
/// `density(t) = density_kg_m3 + density_per_k x (t - reference_c)`, and the same for
/// `cp`. Linear is within 0.1 % of the tables between 20 and 50 C, the range of
/// warm-water loops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoolantProperties {
    /// The temperature the values below are given at, C.
    pub reference_c: f64,
    /// Density at the reference temperature, kg/m3.
    pub density_kg_m3: f64,
    /// Change of density per K, kg/(m3 K).
    #[serde(default)]
    pub density_per_k: f64,
    /// Specific heat at the reference temperature, kJ/(kg K).
    pub cp_kj_per_kg_k: f64,
    /// Change of specific heat per K, kJ/(kg K2).
    #[serde(default)]
    pub cp_per_k: f64,
}

impl CoolantProperties {
    /// Water: 997 kg/m3 and 4.18 kJ/(kg K) at 25 C; density falls 0.32 kg/m3 per K
    /// (992.2 at 40 C), cp taken constant (it varies by less than 0.1 % over 20-50 C).
    pub fn water() -> CoolantProperties {
        CoolantProperties {
            reference_c: 25.0,
            density_kg_m3: 997.0,
            density_per_k: -0.32,
            cp_kj_per_kg_k: 4.18,
            cp_per_k: 0.0,
        }
    }

    /// 25 % propylene glycol (domain.md): density 1031 kg/m3 at 0 C to 1012 at 45 C,
    /// cp 3.86 to 3.97 kJ/(kg K) over the same range; here at 25 C (1020.4 and 3.92)
    /// with the slopes of those end points.
    pub fn pg25() -> CoolantProperties {
        CoolantProperties {
            reference_c: 25.0,
            density_kg_m3: 1020.4,
            density_per_k: -19.0 / 45.0,
            cp_kj_per_kg_k: 3.92,
            cp_per_k: 0.11 / 45.0,
        }
    }

    /// Density at `t` C, kg/m3.
    pub fn density(&self, t: f64) -> f64 {
        self.density_kg_m3 + self.density_per_k * (t - self.reference_c)
    }

    /// Specific heat at `t` C, kJ/(kg K).
    pub fn cp(&self, t: f64) -> f64 {
        self.cp_kj_per_kg_k + self.cp_per_k * (t - self.reference_c)
    }

    /// Heat carried, kW, by `flow_lpm` L/min warmed by `delta_t` K, properties at the
    /// mean temperature `t_mean`: Q = density x flow x cp x delta T.
    pub fn heat_kw(&self, flow_lpm: f64, delta_t: f64, t_mean: f64) -> f64 {
        self.density(t_mean) * flow_lpm / 60_000.0 * self.cp(t_mean) * delta_t
    }
}

impl CoolingConfig {
    /// The properties of `coolant`.
    pub fn coolant(&self, coolant: Coolant) -> &CoolantProperties {
        match coolant {
            Coolant::Water => &self.water,
            Coolant::Pg25 => &self.pg25,
        }
    }

    /// Checks the numbers that would make results meaningless.
    pub fn validate(&self) -> Result<(), AnalyticsError> {
        let bad = |m: String| Err(AnalyticsError::Config(format!("cooling.{m}")));
        for (name, d) in [
            ("max_sample_gap", self.max_sample_gap),
            ("interval", self.interval),
            ("dew_point_max_age", self.dew_point_max_age),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be positive"));
            }
        }
        if !(self.max_sensor_spread_k.is_finite() && self.max_sensor_spread_k > 0.0) {
            return bad(format!(
                "max_sensor_spread_k must be positive, got {}",
                self.max_sensor_spread_k
            ));
        }
        let (w, c) = (self.dew_point_warning_k, self.dew_point_critical_k);
        if !(w.is_finite() && c.is_finite() && w >= c) {
            return bad(format!(
                "dew_point_warning_k ({w}) must be at least dew_point_critical_k ({c})"
            ));
        }
        for (name, p) in [("water", &self.water), ("pg25", &self.pg25)] {
            let values = [
                p.reference_c,
                p.density_kg_m3,
                p.density_per_k,
                p.cp_kj_per_kg_k,
                p.cp_per_k,
            ];
            if values.iter().any(|v| !v.is_finite()) {
                return bad(format!("{name}: every property must be a finite number"));
            }
            // Positive over any temperature a liquid loop can have.
            for t in [0.0, 80.0] {
                if p.density(t) <= 0.0 || p.cp(t) <= 0.0 {
                    return bad(format!(
                        "{name}: density and cp must stay positive from 0 to 80 C \
                         (at {t} C: {} kg/m3, {} kJ/(kg K))",
                        p.density(t),
                        p.cp(t)
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_thumb_from_domain_md() {
        // Water: Q [kW] ~= 0.0695 x flow [L/min] x dT [K]; PG25: ~= 0.0667.
        let c = CoolingConfig::default();
        let w = c.water.heat_kw(1.0, 1.0, 25.0);
        let g = c.pg25.heat_kw(1.0, 1.0, 25.0);
        assert!((w - 0.0695).abs() < 0.0005, "water {w}");
        assert!((g - 0.0667).abs() < 0.0002, "pg25 {g}");
        // The end points of domain.md's PG25 ranges.
        assert!((c.pg25.density(0.0) - 1031.0).abs() < 0.1);
        assert!((c.pg25.density(45.0) - 1012.0).abs() < 0.1);
        assert!((c.pg25.cp(45.0) - 3.97).abs() < 0.002);
        // Water at 40 C: 992.2 kg/m3 (tables).
        assert!((c.water.density(40.0) - 992.2).abs() < 0.2);
        c.validate().unwrap();
    }

    #[test]
    fn nonsense_is_refused_with_its_name() {
        let mut c = CoolingConfig::default();
        c.pg25.density_per_k = -20.0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("cooling.pg25"), "{e}");
        let c = CoolingConfig {
            dew_point_critical_k: 3.0,
            ..CoolingConfig::default()
        };
        assert!(c.validate().is_err());
        let c = CoolingConfig {
            max_sample_gap: Duration::ZERO,
            ..CoolingConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_sample_gap"));
    }
}
