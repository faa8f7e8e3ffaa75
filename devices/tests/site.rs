//! The builtin Qingdao site loads and expands into the inventory the simulator serves,
//! and the optional parts of the format (faults, defaults, gateways) read as documented.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use tidewatch_devices::{
    Coolant, CoolingKind, DeviceKind, FaultKind, FaultSpec, MeterRole, PayloadFormat, ProfileSet,
    SensorKind, Site,
};

fn builtin() -> (ProfileSet, Site) {
    let profiles = ProfileSet::builtin().unwrap();
    let site = Site::builtin(&profiles).unwrap();
    (profiles, site)
}

#[test]
fn builtin_site_header() {
    let (_, site) = builtin();
    assert_eq!(site.path, Path::new("fixtures/site/qingdao.toml"));
    assert_eq!(site.park.id, "qingdao");
    assert_eq!(site.park.name, "青岛智算产业园 Qingdao AI Computing Park");
    assert_eq!(site.park.utc_offset_hours, 8);
    assert_eq!(site.climate, tidewatch_devices::Climate::default());
    assert_eq!(site.climate.annual_mean_c, 12.7);
    assert_eq!(site.climate.coldest_day_of_year, 22);
    assert_eq!(site.simulation.seed, 20261127);
    // 2026-01-01T00:00:00+08:00 = 2025-12-31T16:00:00Z.
    assert_eq!(site.simulation.start_unix, 1_767_196_800);
    assert_eq!(site.simulation.step, Duration::from_secs(1));
    assert_eq!(site.simulation.sensor_interval, Duration::from_secs(10));
    assert_eq!(site.simulation.topic_prefix, "tidewatch/qingdao");
    assert!(site.faults.is_empty());
    let ids: Vec<&str> = site.centres.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["dc1", "dc2"]);
}

#[test]
fn builtin_site_centres_and_zones() {
    let (_, site) = builtin();
    let dc1 = site.centre("dc1").unwrap();
    assert_eq!(dc1.zones.len(), 6);
    assert_eq!(dc1.electrical.transformer_kva, 2500.0);
    assert_eq!(dc1.electrical.ups_proportional_loss, 0.025);
    assert_eq!(dc1.plant.dry_cooler_kw_per_kw, 0.02);
    let row03 = site.zone("dc1", "row03").unwrap();
    assert_eq!(row03.name, "第3列 Row 03");
    assert_eq!(
        (row03.cooling, row03.racks, row03.rack_kw),
        (CoolingKind::Air, 10, 20.0)
    );
    assert_eq!(row03.pdu_profile, "cn-ipdu");
    assert!(!row03.pdus_behind_gateway && row03.cdu.is_none());
    assert_eq!(
        (row03.inrow_units, row03.inrow_profile.as_deref()),
        (3, Some("inrow-acu"))
    );
    assert_eq!(
        row03.cooling_meter_profile.as_deref(),
        Some("cn-dtsd-meter")
    );
    assert_eq!(
        (
            row03.idle_utilisation,
            row03.job_utilisation,
            row03.job_duty
        ),
        (0.45, 0.85, 0.5)
    );
    let roles: Vec<MeterRole> = dc1.meters.iter().map(|m| m.role).collect();
    assert!(roles.contains(&MeterRole::CoolingTower) && !roles.contains(&MeterRole::DryCooler));

    let dc2 = site.centre("dc2").unwrap();
    assert_eq!(dc2.zones.len(), 8);
    assert_eq!(dc2.plant.dry_cooler_kw_per_kw, 0.015);
    assert_eq!(dc2.electrical.ups_square_loss, 0.008);
    let racks: Vec<u16> = dc2.zones.iter().map(|z| z.racks).collect();
    assert_eq!(racks, [12, 12, 12, 12, 12, 12, 10, 10]);
    for zone in &dc2.zones {
        let cdu = zone.cdu.as_ref().unwrap();
        let late = zone.id.as_str() >= "mm05";
        assert_eq!(zone.cooling, CoolingKind::Liquid);
        assert_eq!(zone.rack_kw, 40.0);
        assert_eq!(zone.pdus_behind_gateway, late, "{}", zone.id);
        assert_eq!(
            zone.pdu_profile,
            if late { "cn-ipdu" } else { "raritan-px3" }
        );
        assert_eq!(cdu.capture_ratio, if late { 0.85 } else { 0.80 });
        let pg25 = zone.id == "mm07" || zone.id == "mm08";
        assert_eq!(
            cdu.coolant,
            if pg25 { Coolant::Pg25 } else { Coolant::Water }
        );
        assert_eq!(cdu.profile, "lc-cdu");
        assert_eq!(
            (cdu.supply_setpoint_c, cdu.flow_per_kw_lpm, cdu.pumps),
            (36.0, 1.2, 2)
        );
        assert_eq!((cdu.pump_capacity_share, cdu.pump_rated_kw), (0.6, 3.0));
        assert_eq!((cdu.water_class_c, cdu.approach_k), (32.0, 4.0));
        assert_eq!(zone.inrow_units, 2);
        assert_eq!(
            zone.cooling_meter_initial_kwh,
            if zone.id == "mm03" { 4_294_000.0 } else { 0.0 }
        );
    }
    assert_eq!(site.zone("dc2", "mm07").unwrap().rated_it_kw(), 400.0);
    assert!(site.zone("dc2", "mm09").is_none() && site.zone("dc3", "mm01").is_none());
}

#[test]
fn builtin_site_device_counts() {
    let (profiles, site) = builtin();
    let devices = site.devices();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &devices {
        *by_kind.entry(d.kind.as_str()).or_default() += 1;
        // Every device's profile exists and is of the device's kind.
        assert_eq!(profiles.get(&d.profile).unwrap().kind, d.kind, "{}", d.id);
    }
    // dc1: 6 rows x 10 racks x 2 PDUs = 120 PDUs, 18 in-row units, 12 zone meters,
    //      8 facility meters.
    // dc2: (6 x 12 + 2 x 10) racks x 2 = 184 PDUs, 8 CDUs, 16 in-row units,
    //      16 zone meters, 8 facility meters.
    assert_eq!(
        by_kind,
        BTreeMap::from([
            ("cdu", 8),
            ("energy_meter", 44),
            ("inrow_unit", 34),
            ("rack_pdu", 304)
        ])
    );
    assert_eq!(devices.len(), 390);
    assert_eq!(site.centre("dc1").unwrap().devices().len(), 158);
    assert_eq!(site.centre("dc2").unwrap().devices().len(), 232);

    let ids: HashSet<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), devices.len(), "device ids are unique");
    // Deterministic order.
    assert_eq!(site.devices(), devices);
    assert_eq!(devices[0].id, "dc1-incoming");
    let first_zone: Vec<&str> = devices[8..14].iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        first_zone,
        [
            "dc1-row01-meter-it",
            "dc1-row01-meter-cooling",
            "dc1-row01-acu-1",
            "dc1-row01-acu-2",
            "dc1-row01-acu-3",
            "dc1-row01-r01-pdu-a"
        ]
    );
}

#[test]
fn builtin_site_gateways_and_unit_ids() {
    let (_, site) = builtin();
    let devices = site.devices();
    let mut per_gateway: HashMap<&str, Vec<u8>> = HashMap::new();
    for d in &devices {
        match &d.gateway {
            Some(gw) => per_gateway.entry(gw.as_str()).or_default().push(d.unit_id),
            None => assert_eq!(d.unit_id, 1, "{}", d.id),
        }
    }
    let mut gateways: Vec<&str> = per_gateway.keys().copied().collect();
    gateways.sort();
    assert_eq!(
        gateways,
        [
            "dc2-mm05-pdu-gw",
            "dc2-mm06-pdu-gw",
            "dc2-mm07-pdu-gw",
            "dc2-mm08-pdu-gw"
        ]
    );
    for (gateway, units) in &per_gateway {
        let unique: HashSet<u8> = units.iter().copied().collect();
        assert_eq!(
            unique.len(),
            units.len(),
            "unit ids behind {gateway} are unique"
        );
        assert!(units.iter().all(|u| (1..=247).contains(u)));
        let expected = if gateway.contains("mm07") || gateway.contains("mm08") {
            20
        } else {
            24
        };
        assert_eq!(units.len(), expected);
    }

    let pdu = site.device("dc2-mm05-r03-pdu-b").unwrap();
    assert_eq!(pdu.kind, DeviceKind::RackPdu);
    assert_eq!((pdu.rack, pdu.feed, pdu.unit_id), (Some(3), Some('b'), 6));
    assert_eq!(pdu.gateway.as_deref(), Some("dc2-mm05-pdu-gw"));
    assert_eq!(pdu.profile, "cn-ipdu");
    assert_eq!(site.device("dc2-mm05-r03-pdu-a").unwrap().unit_id, 5);
    let px3 = site.device("dc2-mm01-r12-pdu-a").unwrap();
    assert_eq!(
        (px3.gateway.as_deref(), px3.unit_id, px3.profile.as_str()),
        (None, 1, "raritan-px3")
    );

    let cooling = site.device("dc2-mm03-meter-cooling").unwrap();
    assert_eq!(cooling.role, Some(MeterRole::ZoneCooling));
    assert_eq!(
        (cooling.initial_kwh, cooling.profile.as_str()),
        (4_294_000.0, "cn-dtsd-meter")
    );
    assert_eq!(
        site.device("dc2-mm04-meter-cooling").unwrap().initial_kwh,
        0.0
    );
    let it = site.device("dc1-row06-meter-it").unwrap();
    assert_eq!(
        (it.role, it.profile.as_str()),
        (Some(MeterRole::ZoneIt), "eastron-sdm630")
    );
    let tower = site.device("dc1-tower").unwrap();
    assert_eq!(
        (tower.role, tower.zone.as_deref()),
        (Some(MeterRole::CoolingTower), None)
    );
    assert_eq!(
        site.device("dc2-drycooler").unwrap().role,
        Some(MeterRole::DryCooler)
    );
    let acu = site.device("dc2-mm08-acu-2").unwrap();
    assert_eq!(
        (acu.kind, acu.unit_number),
        (DeviceKind::InrowUnit, Some(2))
    );
    assert!(site.device("dc2-mm08-acu-3").is_none());
    assert_eq!(site.device("dc2-mm08-cdu").unwrap().kind, DeviceKind::Cdu);
    assert!(site.device("dc1-row01-cdu").is_none());
}

#[test]
fn builtin_site_sensors() {
    let (_, site) = builtin();
    let sensors = site.sensors();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sensors {
        *by_kind.entry(s.kind.as_str()).or_default() += 1;
        assert!(s.topic.starts_with("tidewatch/qingdao/"), "{}", s.topic);
        assert_eq!(s.interval, Duration::from_secs(10));
    }
    // 152 racks with an inlet sensor each, two leak ropes in each of the 8 liquid zones,
    // one dew-point sensor in each of the 14 zones.
    assert_eq!(
        by_kind,
        BTreeMap::from([("dew_point", 14), ("leak", 16), ("rack_inlet", 152)])
    );
    assert_eq!(sensors.len(), 182);

    let topics: HashSet<&str> = sensors.iter().map(|s| s.topic.as_str()).collect();
    assert_eq!(topics.len(), sensors.len(), "sensor topics are unique");
    let ids: HashSet<&str> = sensors.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), sensors.len(), "sensor ids are unique");
    let devices = site.devices();
    assert!(
        devices.iter().all(|d| !ids.contains(d.id.as_str())),
        "sensor and device ids differ"
    );

    let find = |id: &str| sensors.iter().find(|s| s.id == id).unwrap();
    let inlet = find("dc2-mm03-r07-inlet");
    assert_eq!(inlet.topic, "tidewatch/qingdao/dc2/mm03/r07/inlet");
    assert_eq!(
        (inlet.kind, inlet.payload, inlet.rack),
        (SensorKind::RackInlet, PayloadFormat::Json, Some(7))
    );
    let leak = find("dc2-mm03-leak-racks");
    assert_eq!(leak.topic, "tidewatch/qingdao/dc2/mm03/leak/racks");
    assert_eq!(
        (leak.kind, leak.payload, leak.rack),
        (SensorKind::Leak, PayloadFormat::Number, None)
    );
    assert_eq!(
        find("dc2-mm08-leak-cdu").topic,
        "tidewatch/qingdao/dc2/mm08/leak/cdu"
    );
    let dew = find("dc1-row02-dewpoint");
    assert_eq!(dew.topic, "tidewatch/qingdao/dc1/row02/dewpoint");
    assert_eq!(
        (dew.payload, dew.zone.as_str(), dew.centre.as_str()),
        (PayloadFormat::LineProtocol, "row02", "dc1")
    );
    assert!(
        !sensors.iter().any(|s| s.id == "dc1-row02-leak-cdu"),
        "air zones have no leak ropes"
    );
}

#[test]
fn builtin_site_equals_the_file_on_disk() {
    let (profiles, site) = builtin();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/site/qingdao.toml");
    let loaded = Site::load(path, &profiles).unwrap();
    assert_eq!(
        Site {
            path: site.path.clone(),
            ..loaded
        },
        site
    );
}

#[test]
fn small_site_with_faults_and_defaults() {
    let profiles = ProfileSet::builtin().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/site-small.toml");
    let site = Site::load(path, &profiles).unwrap();
    // Climate: one key set, the rest Qingdao's defaults.
    assert_eq!(site.climate.annual_mean_c, 20.0);
    assert_eq!(site.climate.humidity_summer_pct, 85.0);
    // A TOML date-time works as well as a string; defaults for step, prefix, interval.
    assert_eq!(site.simulation.start_unix, 1_782_907_200);
    assert_eq!(site.simulation.step, Duration::from_secs(1));
    assert_eq!(site.simulation.topic_prefix, "tidewatch/test");
    assert_eq!(site.simulation.sensor_interval, Duration::from_secs(10));

    let mm01 = site.zone("dc1", "mm01").unwrap();
    assert_eq!(mm01.name, "mm01");
    assert_eq!(mm01.cdu.as_ref().unwrap().capture_ratio, 0.8);
    assert_eq!(mm01.cooling_meter_profile, None);
    assert_eq!(
        (mm01.idle_utilisation, mm01.job_utilisation, mm01.job_duty),
        (0.4, 0.9, 0.5)
    );
    let mm02 = site.zone("dc1", "mm02").unwrap();
    let cdu = mm02.cdu.as_ref().unwrap();
    assert_eq!(
        (cdu.profile.as_str(), cdu.coolant, cdu.capture_ratio),
        ("lc-cdu", Coolant::Pg25, 0.9)
    );
    assert_eq!(mm02.cooling_meter_initial_kwh, 1000.0);
    let dc9 = site.centre("dc9").unwrap();
    assert_eq!(dc9.name, "dc9");
    assert_eq!(
        (dc9.meters[0].profile.as_str(), dc9.meters[0].initial_kwh),
        ("cn-dtsd-meter", 5.0)
    );
    assert_eq!(site.zone("dc9", "room1").unwrap().inrow_units, 1);
    // 2 meters + (it meter + cdu + 2 acu + 24 PDUs) + (it + cooling + cdu + 2 acu + 8 PDUs)
    // + 1 meter + (it meter + acu + 4 PDUs).
    assert_eq!(site.devices().len(), 2 + 28 + 13 + 1 + 6);

    let kinds: Vec<FaultKind> = site.faults.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            FaultKind::DriftingSensor,
            FaultKind::StuckSensor,
            FaultKind::PumpFailure,
            FaultKind::PhaseOverload,
            FaultKind::MeterReset,
            FaultKind::DeviceLate,
            FaultKind::CondensationRisk
        ]
    );
    let drift = &site.faults[0];
    assert_eq!(drift.target, "dc1-mm01-cdu");
    assert_eq!(drift.field.as_deref(), Some("secondary_supply_temp_1"));
    assert_eq!(drift.start_offset, Duration::from_secs(36 * 3600));
    assert_eq!(drift.duration, Some(Duration::from_secs(12 * 3600)));
    assert_eq!(drift.magnitude, Some(0.5));
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.lines().nth(drift.line - 1), Some("[[fault]]"));
    let stuck = &site.faults[1];
    assert_eq!(
        (stuck.start_offset, stuck.duration, stuck.magnitude),
        (Duration::from_secs(26 * 3600), None, None)
    );
    assert_eq!(site.device("dc1-mm02-r04-pdu-b").unwrap().unit_id, 8);
}

#[test]
fn a_fault_from_the_command_line_has_the_site_file_keys() {
    let spec = FaultSpec::from_arg(
        "kind=drifting_sensor, target=dc2-mm03-cdu,field=secondary_supply_temp_1,at=1h30m,duration=2h,magnitude=8",
    )
    .expect("a valid fault");
    assert_eq!(spec.kind, FaultKind::DriftingSensor);
    assert_eq!(spec.target, "dc2-mm03-cdu");
    assert_eq!(spec.field.as_deref(), Some("secondary_supply_temp_1"));
    assert_eq!(spec.start_offset, Duration::from_secs(5400));
    assert_eq!(spec.duration, Some(Duration::from_secs(7200)));
    assert_eq!(spec.magnitude, Some(8.0));

    let spec = FaultSpec::from_arg("kind=pump_failure,target=dc2-mm01-cdu").expect("valid");
    assert_eq!(
        (spec.start_offset, spec.duration, spec.magnitude, spec.field),
        (Duration::ZERO, None, None, None),
        "at defaults to the start, the rest to the kind's defaults"
    );
}

#[test]
fn a_bad_command_line_fault_says_what_is_wrong() {
    let cases = [
        ("pump_failure", "\"pump_failure\" is not key=value"),
        (
            "kind=pump_trip,target=x",
            "unknown fault kind \"pump_trip\" (one of pump_failure,",
        ),
        ("target=dc2-mm01-cdu", "kind is missing"),
        ("kind=pump_failure", "target is missing"),
        ("kind=pump_failure,target=", "target is empty"),
        (
            "kind=pump_failure,target=x,at=2 hours",
            "at: invalid duration \"2 hours\"",
        ),
        (
            "kind=pump_failure,target=x,magnitude=NaN",
            "magnitude: \"NaN\" is not a number",
        ),
        (
            "kind=pump_failure,target=x,start=2h",
            "unknown key \"start\" (keys: kind, target, at,",
        ),
        (
            "kind=stuck_sensor,target=x",
            "a stuck_sensor fault needs field",
        ),
        (
            "kind=pump_failure,target=x,field=pump_1_fault",
            "field only applies to stuck_sensor and drifting_sensor, not to pump_failure",
        ),
        (
            "kind=pump_failure,target=x,duration=0s",
            "duration must be longer than zero",
        ),
    ];
    for (arg, expected) in cases {
        let err = FaultSpec::from_arg(arg).expect_err(arg);
        assert!(err.contains(expected), "{arg}: {err}");
    }
}
