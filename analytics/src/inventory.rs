//! Which counters exist, where they sit in the energy flow, and how to read them: the
//! site description turned into the list of kWh counters the analytics reads.

use serde::Serialize;
use tidewatch_devices::{DataType, DeviceKind, MeterRole, ProfileSet, Site};

use crate::counters::CounterSpec;
use crate::error::AnalyticsError;

/// The field of an energy meter's cumulative import energy, kWh.
pub const METER_ENERGY_FIELD: &str = "import_kwh";
/// The field of a rack PDU's cumulative energy, kWh.
pub const PDU_ENERGY_FIELD: &str = "energy_kwh";

/// One kWh counter of the park.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeterRef {
    /// Device id (the `device` tag of its points).
    pub id: String,
    /// Its computing centre.
    pub centre: String,
    /// Its zone (micro-module or row), for zone meters and PDUs.
    pub zone: Option<String>,
    /// What power flow it measures; `None` for rack PDUs (IT by construction) and for
    /// energy meters the site gave no role (which the PUE refuses).
    pub role: Option<MeterRole>,
    /// Energy meter or rack PDU.
    #[serde(serialize_with = "kind_name")]
    pub kind: DeviceKind,
    /// The measurement its points are stored under.
    pub measurement: String,
    /// The counter's field.
    pub field: String,
    /// Register width and rating.
    pub counter: CounterSpec,
}

fn kind_name<S: serde::Serializer>(kind: &DeviceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// The park's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    /// The park's id (the scope name of park-wide results).
    pub park: String,
    /// Local time = UTC + this; days and months are local.
    pub utc_offset_hours: i32,
    /// Centre ids, in site order.
    pub centres: Vec<String>,
    /// Every energy meter and rack PDU.
    pub meters: Vec<MeterRef>,
}

impl Inventory {
    /// The counters of a site: every energy meter (field `import_kwh`) and rack PDU
    /// (field `energy_kwh`), with the register width taken from the device profile
    /// (an unsigned 32-bit register of Wh wraps at 4 294 967.296 kWh; float and 64-bit
    /// registers are taken not to wrap) and a rated power from the site: the
    /// transformer for the incoming supply and plant meters, the UPS for its meters,
    /// racks x rack kW for a zone's meters, a rack's kW for its PDUs.
    pub fn from_site(site: &Site, profiles: &ProfileSet) -> Result<Inventory, AnalyticsError> {
        let mut meters = Vec::new();
        for device in site.devices() {
            let field = match device.kind {
                DeviceKind::EnergyMeter => METER_ENERGY_FIELD,
                DeviceKind::RackPdu => PDU_ENERGY_FIELD,
                DeviceKind::Cdu | DeviceKind::InrowUnit => continue,
            };
            if device.kind == DeviceKind::EnergyMeter && device.role.is_none() {
                return Err(AnalyticsError::MeterWithoutRole {
                    meter: device.id,
                    centre: device.centre,
                });
            }
            let wrap_kwh = profiles
                .get(&device.profile)
                .and_then(|p| p.field(field))
                .and_then(|f| {
                    let bits = match f.data_type {
                        DataType::Uint16 => 16,
                        DataType::Uint32 => 32,
                        _ => return None,
                    };
                    CounterSpec::register(bits, f.scale).wrap_kwh
                });
            let centre = site.centre(&device.centre);
            let zone = device
                .zone
                .as_deref()
                .and_then(|z| site.zone(&device.centre, z));
            let rated_kw = match (device.kind, device.role) {
                (DeviceKind::RackPdu, _) => zone.map(|z| z.rack_kw),
                (_, Some(MeterRole::ZoneIt | MeterRole::ZoneCooling)) => {
                    zone.map(|z| z.rated_it_kw())
                }
                (_, Some(MeterRole::UpsInput | MeterRole::UpsOutput)) => {
                    centre.map(|c| c.electrical.ups_kva)
                }
                _ => centre.map(|c| c.electrical.transformer_kva),
            };
            meters.push(MeterRef {
                id: device.id,
                centre: device.centre,
                zone: device.zone,
                role: device.role,
                kind: device.kind,
                measurement: device.kind.as_str().to_owned(),
                field: field.to_owned(),
                counter: CounterSpec { wrap_kwh, rated_kw },
            });
        }
        Ok(Inventory {
            park: site.park.id.clone(),
            utc_offset_hours: site.park.utc_offset_hours,
            centres: site.centres.iter().map(|c| c.id.clone()).collect(),
            meters,
        })
    }

    /// The meters of a centre with one of `roles`.
    pub fn with_roles(&self, centre: &str, roles: &[MeterRole]) -> Vec<&MeterRef> {
        self.meters
            .iter()
            .filter(|m| m.centre == centre && m.role.is_some_and(|r| roles.contains(&r)))
            .collect()
    }

    /// A centre's meters and their roles, for error messages.
    pub fn describe_centre(&self, centre: &str) -> String {
        let list: Vec<String> = self
            .meters
            .iter()
            .filter(|m| m.centre == centre && m.kind == DeviceKind::EnergyMeter)
            .map(|m| match m.role {
                Some(role) => format!("{} ({})", m.id, role_name(role)),
                None => format!("{} (no role)", m.id),
            })
            .collect();
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        }
    }
}

/// A role as the site file writes it (`ups_output`).
pub fn role_name(role: MeterRole) -> &'static str {
    match role {
        MeterRole::Incoming => "incoming",
        MeterRole::UpsInput => "ups_input",
        MeterRole::UpsOutput => "ups_output",
        MeterRole::Chiller => "chiller",
        MeterRole::DryCooler => "dry_cooler",
        MeterRole::CoolingTower => "cooling_tower",
        MeterRole::ChwPumps => "chw_pumps",
        MeterRole::Lighting => "lighting",
        MeterRole::Other => "other",
        MeterRole::ZoneIt => "zone_it",
        MeterRole::ZoneCooling => "zone_cooling",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qingdao_inventory_knows_the_rolling_counter() {
        let profiles = ProfileSet::builtin().unwrap();
        let site = Site::builtin(&profiles).unwrap();
        let inv = Inventory::from_site(&site, &profiles).unwrap();
        assert_eq!(inv.centres, ["dc1", "dc2"]);
        let cooling = inv
            .meters
            .iter()
            .find(|m| m.id == "dc2-mm03-meter-cooling")
            .unwrap();
        let wrap = cooling.counter.wrap_kwh.unwrap();
        assert!((wrap - 4_294_967.296).abs() < 1e-6, "{wrap}");
        assert_eq!(cooling.role, Some(MeterRole::ZoneCooling));
        let incoming = inv.meters.iter().find(|m| m.id == "dc1-incoming").unwrap();
        assert_eq!(incoming.counter.wrap_kwh, None, "float32 registers");
        assert_eq!(incoming.counter.rated_kw, Some(2500.0));
        let pdus = inv
            .meters
            .iter()
            .filter(|m| m.kind == DeviceKind::RackPdu)
            .count();
        assert_eq!(pdus, 304);
        assert_eq!(inv.with_roles("dc2", &[MeterRole::UpsOutput]).len(), 1);
    }
}
