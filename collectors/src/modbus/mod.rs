//! The Modbus TCP collector.
//!
//! * [`plan`]: which read requests fetch the fields due at a poll tick (fewest possible).
//! * [`decode`]: registers and bits to engineering values.
//! * [`config`]: the `[modbus]` table of a collector config.
//! * this module: resolving a config against the site and profiles
//!   ([`ModbusCollector::new`]) and running it ([`ModbusCollector::start`]): per TCP
//!   endpoint (a device, or a gateway with several unit ids behind it) a scheduler of
//!   polls and one worker per allowed request in flight, each owning its TCP connection
//!   (one task for both when one request is allowed). A dead, slow or garbling endpoint
//!   only ever delays itself.
//!
//! Points go out as `Vec<Point>` batches to a [`PointSink`](crate::sink::PointSink) (a
//! sink that is slow, or refuses a batch as unavailable and is retried, slows the
//! endpoint's polling down rather than losing points): one point per
//! answered request (measurement = device kind, tags from the site, timestamp = when
//! the response arrived) and one `modbus_device` health point per device poll.

pub mod config;
pub mod decode;
pub mod plan;
mod poller;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tidewatch_devices::{Device, DeviceKind, Profile, ProfileSet, Site};
use tidewatch_model::{FieldKey, Series};

pub use config::{EndpointConfig, ModbusConfig};
pub use decode::{DecodeError, Decoded};
pub use plan::{PlanError, PlanLimits, ReadRequest};
pub use poller::{DeviceStatsSnapshot, RunningCollector};

/// The measurement of the device health points.
pub const HEALTH_MEASUREMENT: &str = "modbus_device";

/// Why a config cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Devices(#[from] tidewatch_devices::ConfigError),
    #[error("endpoint {address}: no device \"{device}\" in the site")]
    UnknownDevice { address: String, device: String },
    #[error("endpoint {address}: no device of the site is behind gateway \"{gateway}\"")]
    UnknownGateway { address: String, gateway: String },
    #[error("device \"{device}\" is listed at two endpoints ({first} and {second})")]
    DeviceTwice {
        device: String,
        first: String,
        second: String,
    },
    #[error("endpoint {address}: devices \"{a}\" and \"{b}\" both answer as unit id {unit}")]
    UnitTwice {
        address: String,
        a: String,
        b: String,
        unit: u8,
    },
    #[error("device \"{device}\": no profile \"{profile}\"")]
    UnknownProfile { device: String, profile: String },
    #[error("device \"{device}\" (profile {profile}): {source}")]
    Plan {
        device: String,
        profile: String,
        source: PlanError,
    },
}

/// A device as the collector polls it.
#[derive(Debug, Clone)]
pub struct DeviceTarget {
    pub id: String,
    pub unit_id: u8,
    pub kind: DeviceKind,
    pub profile: Arc<Profile>,
    /// The name of each of the profile's fields (same index as `profile.fields`),
    /// made once per profile: every point of every device of the profile shares
    /// them instead of copying the name per value.
    pub field_keys: Arc<[FieldKey]>,
    /// Measurement (the device kind) and tags of every point of this device, built
    /// once: each reading shares them instead of copying strings.
    pub series: Series,
    /// The same for its `modbus_device` health points (`address`, `device`, `unit`).
    pub health: Series,
    /// When each field is read; shared by the devices of a profile (same `max_gap`), so
    /// polling many of them reads the same plans.
    pub schedule: Arc<Schedule>,
}

/// A TCP endpoint and the devices behind it.
#[derive(Debug, Clone)]
pub struct EndpointTarget {
    /// `host:port`.
    pub address: String,
    pub devices: Vec<DeviceTarget>,
    pub max_in_flight: usize,
    pub max_gap: u16,
}

/// The tags of every point of a device: `device`, `centre`, `model` (the profile), and
/// where they apply `zone`, `rack` (`r07`), `feed` (`a`/`b`) and `role` (meters). The
/// same keys and values as the simulator's backfill (`tidewatch simulate --fast`), so
/// collected and backfilled series line up.
pub fn device_tags(device: &Device) -> Vec<(String, String)> {
    let mut tags = BTreeMap::new();
    tags.insert("device", device.id.clone());
    tags.insert("centre", device.centre.clone());
    tags.insert("model", device.profile.clone());
    if let Some(z) = &device.zone {
        tags.insert("zone", z.clone());
    }
    if let Some(r) = device.rack {
        tags.insert("rack", format!("r{r:02}"));
    }
    if let Some(f) = device.feed {
        tags.insert("feed", f.to_string());
    }
    if let Some(role) = device.role {
        tags.insert("role", role.as_str().to_owned());
    }
    tags.into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// When a device's fields are read: the fields grouped by poll interval, ticks aligned
/// to multiples of each interval since the Unix epoch (a 10 s field is read at :00,
/// :10, ...), and the request plan for every combination of groups due together.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// (interval in ms, field indices), by interval.
    groups: Vec<(u64, Vec<usize>)>,
    /// Plan per bit mask of due groups.
    plans: HashMap<u32, Arc<Vec<ReadRequest>>>,
}

impl Schedule {
    /// Group a profile's fields by interval and plan every combination of groups.
    pub fn new(profile: &Profile, max_gap: u16) -> Result<Schedule, PlanError> {
        let mut by_interval: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, f) in profile.fields.iter().enumerate() {
            let ms = u64::try_from(f.poll.as_millis()).unwrap_or(u64::MAX).max(1);
            by_interval.entry(ms).or_default().push(i);
        }
        let groups: Vec<(u64, Vec<usize>)> = by_interval.into_iter().collect();
        let limits = PlanLimits::for_profile(profile, max_gap);
        let mut plans = HashMap::new();
        // At most a handful of intervals per profile; cap the combinations anyway.
        let n = groups.len().min(16);
        for mask in 1u32..(1 << n) {
            let due: Vec<usize> = groups
                .iter()
                .enumerate()
                .filter(|(g, _)| mask & (1 << g) != 0)
                .flat_map(|(_, (_, fields))| fields.iter().copied())
                .collect();
            plans.insert(mask, Arc::new(plan::plan(profile, &due, limits)?));
        }
        Ok(Schedule { groups, plans })
    }

    /// The first tick strictly after `now_ms` (Unix ms), and the mask of groups due then.
    pub fn next_after(&self, now_ms: u64) -> Option<(u64, u32)> {
        let next = self
            .groups
            .iter()
            .map(|(iv, _)| (now_ms / iv + 1).saturating_mul(*iv))
            .min()?;
        Some((next, self.mask_at(next)))
    }

    /// Which groups are due at `tick_ms`.
    pub fn mask_at(&self, tick_ms: u64) -> u32 {
        self.groups
            .iter()
            .take(16)
            .enumerate()
            .filter(|(_, (iv, _))| tick_ms % iv == 0)
            .fold(0, |m, (g, _)| m | (1 << g))
    }

    /// The requests of a tick with these groups due.
    pub fn plan(&self, mask: u32) -> Option<Arc<Vec<ReadRequest>>> {
        self.plans.get(&mask).cloned()
    }

    /// [`Schedule::plan`], borrowed.
    pub fn requests(&self, mask: u32) -> Option<&[ReadRequest]> {
        self.plans.get(&mask).map(|p| p.as_slice())
    }

    /// The mask with every group due.
    pub fn full_mask(&self) -> u32 {
        let n = self.groups.len().min(16);
        ((1u64 << n) - 1) as u32
    }

    /// The requests that read every field once (all groups due).
    pub fn full_plan(&self) -> Arc<Vec<ReadRequest>> {
        self.plans
            .get(&self.full_mask())
            .cloned()
            .unwrap_or_default()
    }

    /// The poll intervals, shortest first.
    pub fn intervals(&self) -> impl Iterator<Item = Duration> + '_ {
        self.groups.iter().map(|(ms, _)| Duration::from_millis(*ms))
    }
}

/// A Modbus collector resolved against the site and profiles, ready to start.
#[derive(Debug, Clone)]
pub struct ModbusCollector {
    config: ModbusConfig,
    endpoints: Vec<EndpointTarget>,
}

impl ModbusCollector {
    /// Load the site and profiles the config names (the built-in ones when it names
    /// none) and resolve the config against them.
    pub fn load(config: ModbusConfig) -> Result<ModbusCollector, SetupError> {
        let profiles = match &config.profiles {
            Some(dir) => ProfileSet::load_dir(dir)?,
            None => ProfileSet::builtin()?,
        };
        let site = match &config.site {
            Some(path) => Site::load(path, &profiles)?,
            None => Site::builtin(&profiles)?,
        };
        ModbusCollector::new(config, &site, &profiles)
    }

    /// Resolve every endpoint's devices in the site, their profiles, and plan their
    /// requests; nothing is contacted.
    pub fn new(
        config: ModbusConfig,
        site: &Site,
        profiles: &ProfileSet,
    ) -> Result<ModbusCollector, SetupError> {
        config.validate()?;
        let devices = site.devices();
        let by_id: HashMap<&str, &Device> = devices.iter().map(|d| (d.id.as_str(), d)).collect();
        let mut shared_profiles: HashMap<String, (Arc<Profile>, Arc<[FieldKey]>)> = HashMap::new();
        let mut shared_schedules: HashMap<(String, u16), Arc<Schedule>> = HashMap::new();
        let mut placed: HashMap<String, String> = HashMap::new();
        let mut endpoints = Vec::new();
        for e in &config.endpoints {
            let max_gap = e.max_gap.unwrap_or(config.max_gap);
            let members: Vec<&Device> = match &e.gateway {
                Some(g) => {
                    let m: Vec<&Device> = devices
                        .iter()
                        .filter(|d| d.gateway.as_deref() == Some(g.as_str()))
                        .collect();
                    if m.is_empty() {
                        return Err(SetupError::UnknownGateway {
                            address: e.address.clone(),
                            gateway: g.clone(),
                        });
                    }
                    m
                }
                None => {
                    e.devices
                        .iter()
                        .map(|id| {
                            by_id.get(id.as_str()).copied().ok_or_else(|| {
                                SetupError::UnknownDevice {
                                    address: e.address.clone(),
                                    device: id.clone(),
                                }
                            })
                        })
                        .collect::<Result<_, _>>()?
                }
            };
            let mut units: HashMap<u8, &str> = HashMap::new();
            let mut targets = Vec::new();
            for d in members {
                if let Some(first) = placed.insert(d.id.clone(), e.address.clone()) {
                    return Err(SetupError::DeviceTwice {
                        device: d.id.clone(),
                        first,
                        second: e.address.clone(),
                    });
                }
                if let Some(other) = units.insert(d.unit_id, &d.id) {
                    return Err(SetupError::UnitTwice {
                        address: e.address.clone(),
                        a: other.to_owned(),
                        b: d.id.clone(),
                        unit: d.unit_id,
                    });
                }
                let (profile, field_keys) = match shared_profiles.get(&d.profile) {
                    Some(shared) => shared.clone(),
                    None => {
                        let p =
                            profiles
                                .get(&d.profile)
                                .ok_or_else(|| SetupError::UnknownProfile {
                                    device: d.id.clone(),
                                    profile: d.profile.clone(),
                                })?;
                        let keys: Arc<[FieldKey]> =
                            p.fields.iter().map(|f| FieldKey::from(&f.name)).collect();
                        let shared = (Arc::new(p.clone()), keys);
                        shared_profiles.insert(d.profile.clone(), shared.clone());
                        shared
                    }
                };
                let schedule = match shared_schedules.get(&(d.profile.clone(), max_gap)) {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(Schedule::new(&profile, max_gap).map_err(|source| {
                            SetupError::Plan {
                                device: d.id.clone(),
                                profile: d.profile.clone(),
                                source,
                            }
                        })?);
                        shared_schedules.insert((d.profile.clone(), max_gap), s.clone());
                        s
                    }
                };
                let series = device_tags(d)
                    .into_iter()
                    .fold(Series::new(d.kind.as_str()), |s, (k, v)| s.tag(k, v));
                let health = Series::new(HEALTH_MEASUREMENT)
                    .tag("address", e.address.as_str())
                    .tag("device", d.id.as_str())
                    .tag("unit", d.unit_id.to_string());
                targets.push(DeviceTarget {
                    id: d.id.clone(),
                    unit_id: d.unit_id,
                    kind: d.kind,
                    profile,
                    field_keys,
                    series,
                    health,
                    schedule,
                });
            }
            endpoints.push(EndpointTarget {
                address: e.address.clone(),
                devices: targets,
                max_in_flight: e.max_in_flight.unwrap_or(config.max_in_flight),
                max_gap,
            });
        }
        Ok(ModbusCollector { config, endpoints })
    }

    /// The resolved endpoints.
    pub fn endpoints(&self) -> &[EndpointTarget] {
        &self.endpoints
    }

    /// The config it was built from.
    pub fn config(&self) -> &ModbusConfig {
        &self.config
    }

    /// Ids of every device polled.
    pub fn device_ids(&self) -> HashSet<&str> {
        self.endpoints
            .iter()
            .flat_map(|e| e.devices.iter().map(|d| d.id.as_str()))
            .collect()
    }

    /// Start polling: one task per endpoint; batches go to `sink` (any
    /// [`PointSink`](crate::sink::PointSink), such as a bounded
    /// `tokio::sync::mpsc::Sender<Vec<Point>>`). Must be called inside a tokio runtime.
    pub fn start<S: crate::sink::PointSink + 'static>(self, sink: S) -> RunningCollector {
        poller::start(self.config, self.endpoints, Arc::new(sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_groups_and_ticks() {
        let profiles = ProfileSet::builtin().unwrap();
        let cdu = profiles.get("lc-cdu").unwrap();
        let s = Schedule::new(cdu, 10).unwrap();
        let ivs: Vec<Duration> = s.intervals().collect();
        assert_eq!(
            ivs,
            [1, 5, 60, 3600].map(Duration::from_secs).to_vec(),
            "1s, 5s (profile default), 1m, 1h"
        );
        // At 12:00:00 every group is due; at :01 only the 1 s fields; at :05 1 s and 5 s.
        let hour = 3_600_000 * 400_000;
        assert_eq!(s.next_after(hour - 1), Some((hour, 0b1111)));
        assert_eq!(s.next_after(hour), Some((hour + 1000, 0b0001)));
        assert_eq!(s.mask_at(hour + 5000), 0b0011);
        assert_eq!(s.mask_at(hour + 60_000), 0b0111);
        // The 1 s plan reads input registers 0-3 and 10-11 and discrete input 2.
        let p = s.plan(0b0001).unwrap();
        let summary: Vec<(u8, u16, u16)> = p
            .iter()
            .map(|r| (r.function_code(), r.address, r.count))
            .collect();
        assert_eq!(summary, vec![(2, 2, 1), (4, 0, 12)]);
        assert!(s.full_plan().len() >= 4);
    }

    #[test]
    fn tags_match_the_simulator_backfill_keys() {
        let profiles = ProfileSet::builtin().unwrap();
        let site = Site::builtin(&profiles).unwrap();
        let pdu = site.device("dc2-mm05-r03-pdu-b").unwrap();
        let tags = device_tags(&pdu);
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["centre", "device", "feed", "model", "rack", "zone"]);
        assert_eq!(tags[4].1, "r03");
        let meter = site.device("dc1-ups-out").unwrap();
        assert!(device_tags(&meter).contains(&("role".into(), "ups_output".into())));
    }

    #[test]
    fn setup_errors_name_the_problem() {
        let profiles = ProfileSet::builtin().unwrap();
        let site = Site::builtin(&profiles).unwrap();
        let cfg = |text: &str| ModbusConfig::from_toml_str(text).unwrap();
        let err = |text: &str| {
            ModbusCollector::new(cfg(text), &site, &profiles)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("[[endpoint]]\naddress=\"h:1\"\ndevices=[\"nope\"]").contains("no device \"nope\"")
        );
        assert!(err("[[endpoint]]\naddress=\"h:1\"\ngateway=\"gw\"").contains("gateway \"gw\""));
        assert!(err(
            "[[endpoint]]\naddress=\"h:1\"\ndevices=[\"dc2-mm03-cdu\"]\n[[endpoint]]\naddress=\"h:2\"\ndevices=[\"dc2-mm03-cdu\"]"
        )
        .contains("two endpoints"));
        assert!(
            err("[[endpoint]]\naddress=\"h:1\"\ndevices=[\"dc2-mm03-cdu\", \"dc2-mm04-cdu\"]")
                .contains("unit id 1")
        );
        let ok = ModbusCollector::new(
            cfg("[[endpoint]]\naddress=\"h:1\"\ngateway=\"dc2-mm05-pdu-gw\""),
            &site,
            &profiles,
        )
        .unwrap();
        assert_eq!(ok.endpoints()[0].devices.len(), 24);
    }
}
