//! Which devices and sensors belong together: the site description turned into one
//! [`ZonePlan`] per micro-module or row (its CDU and what the loop is designed for, its
//! PDUs, rack inlet, leak and dew-point sensors). The detectors compare a device with
//! its neighbours and with its design values through this plan.

use serde::{Deserialize, Serialize};
use tidewatch_devices::{Coolant, CoolingKind, DeviceKind, Site};

/// Heat carried by water, kW per (L/min x K) (domain.md: 997 kg/m3 x 4.18 kJ/(kg K) / 60).
pub const WATER_KW_PER_LPM_K: f64 = 0.0695;
/// Heat carried by 25 % propylene glycol, kW per (L/min x K) (domain.md).
pub const PG25_KW_PER_LPM_K: f64 = 0.0667;

/// The liquid loop of a micro-module, as designed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopPlan {
    /// The CDU's device id.
    pub cdu: String,
    /// Secondary supply setpoint, C (used when the CDU does not report its own).
    pub supply_setpoint_c: f64,
    /// Flow setpoint per kW of IT load, L/min (delta-T control).
    pub flow_per_kw_lpm: f64,
    /// Design flow (flow per kW x rated IT kW), L/min: the setpoint's ceiling, and the
    /// reference for "no flow".
    pub design_flow_lpm: f64,
    /// kW per (L/min x K) of the coolant (water 0.0695, PG25 0.0667).
    pub kw_per_lpm_k: f64,
    /// Share of the IT heat the liquid is designed to take (heat capture ratio).
    pub capture_ratio: f64,
    /// The redundant secondary supply sensors fitted (field names).
    pub supply_fields: Vec<String>,
}

/// One zone: a liquid-cooled micro-module or an air-cooled row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZonePlan {
    /// Centre id.
    pub centre: String,
    /// Zone id (the `zone` tag).
    pub zone: String,
    /// The liquid loop, for liquid zones.
    pub cooling_loop: Option<LoopPlan>,
    /// Rack PDU ids.
    pub pdus: Vec<String>,
    /// The PDUs' breaker per phase, A, from the site.
    pub pdu_breaker_a: f64,
    /// Rack inlet sensor ids.
    pub inlets: Vec<String>,
    /// Leak rope sensor ids.
    pub leaks: Vec<String>,
    /// The zone's dew-point sensor.
    pub dew_point: Option<String>,
}

/// The zones of a site.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnomalyPlan {
    /// Every zone, in site order.
    pub zones: Vec<ZonePlan>,
}

impl AnomalyPlan {
    /// The plan of a site: devices and sensors grouped by centre and zone.
    pub fn from_site(site: &Site) -> AnomalyPlan {
        let devices = site.devices();
        let sensors = site.sensors();
        let mut zones = Vec::new();
        for centre in &site.centres {
            for zone in &centre.zones {
                let in_zone = |c: &str, z: Option<&str>| c == centre.id && z == Some(&zone.id);
                let pdus = devices
                    .iter()
                    .filter(|d| {
                        d.kind == DeviceKind::RackPdu && in_zone(&d.centre, d.zone.as_deref())
                    })
                    .map(|d| d.id.clone())
                    .collect();
                let cdu_id = devices
                    .iter()
                    .find(|d| d.kind == DeviceKind::Cdu && in_zone(&d.centre, d.zone.as_deref()))
                    .map(|d| d.id.clone());
                let cooling_loop = match (&zone.cdu, zone.cooling, cdu_id) {
                    (Some(spec), CoolingKind::Liquid, Some(cdu)) => Some(LoopPlan {
                        cdu,
                        supply_setpoint_c: spec.supply_setpoint_c,
                        flow_per_kw_lpm: spec.flow_per_kw_lpm,
                        design_flow_lpm: spec.flow_per_kw_lpm * zone.rated_it_kw(),
                        kw_per_lpm_k: match spec.coolant {
                            Coolant::Water => WATER_KW_PER_LPM_K,
                            Coolant::Pg25 => PG25_KW_PER_LPM_K,
                        },
                        capture_ratio: spec.capture_ratio,
                        supply_fields: (1..=spec.supply_sensors.clamp(1, 3))
                            .map(|n| format!("secondary_supply_temp_{n}"))
                            .collect(),
                    }),
                    _ => None,
                };
                let of_kind = |kind: tidewatch_devices::SensorKind| -> Vec<String> {
                    sensors
                        .iter()
                        .filter(|s| s.kind == kind && in_zone(&s.centre, Some(&s.zone)))
                        .map(|s| s.id.clone())
                        .collect()
                };
                zones.push(ZonePlan {
                    centre: centre.id.clone(),
                    zone: zone.id.clone(),
                    cooling_loop,
                    pdus,
                    pdu_breaker_a: zone.pdu_breaker_a,
                    inlets: of_kind(tidewatch_devices::SensorKind::RackInlet),
                    leaks: of_kind(tidewatch_devices::SensorKind::Leak),
                    dew_point: of_kind(tidewatch_devices::SensorKind::DewPoint)
                        .into_iter()
                        .next(),
                });
            }
        }
        AnomalyPlan { zones }
    }

    /// The zone ids (for the store's `zone` tag filter).
    pub fn zone_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.zones.iter().map(|z| z.zone.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_devices::ProfileSet;

    #[test]
    fn the_qingdao_plan() {
        let profiles = ProfileSet::builtin().unwrap();
        let site = Site::builtin(&profiles).unwrap();
        let plan = AnomalyPlan::from_site(&site);
        assert_eq!(plan.zones.len(), 14);
        let mm01 = plan.zones.iter().find(|z| z.zone == "mm01").unwrap();
        let lp = mm01.cooling_loop.as_ref().unwrap();
        assert_eq!(lp.cdu, "dc2-mm01-cdu");
        assert_eq!(lp.design_flow_lpm, 1.2 * 12.0 * 40.0);
        assert_eq!(lp.supply_fields.len(), 3);
        assert_eq!(mm01.pdus.len(), 24);
        assert_eq!(mm01.inlets.len(), 12);
        assert_eq!(mm01.leaks, ["dc2-mm01-leak-cdu", "dc2-mm01-leak-racks"]);
        assert_eq!(mm01.dew_point.as_deref(), Some("dc2-mm01-dewpoint"));
        let row01 = plan.zones.iter().find(|z| z.zone == "row01").unwrap();
        assert!(row01.cooling_loop.is_none());
        assert_eq!(row01.pdus.len(), 20);
    }
}
