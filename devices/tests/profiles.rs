//! The shipped profiles: they load, agree with the files on disk, use the simulator's
//! quantity names, and together cover every data type, word order and addressing mode.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tidewatch_devices::{
    Addressing, DataType, DeviceKind, Profile, ProfileSet, Sentinel, Table, WordOrder,
};

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/profiles"))
}

#[test]
fn builtin_profiles_load_and_match_the_files() {
    let builtin = ProfileSet::builtin().unwrap();
    let models: Vec<&str> = builtin.models().collect();
    assert_eq!(
        models,
        [
            "cn-dtsd-meter",
            "cn-ipdu",
            "eastron-sdm630",
            "inrow-acu",
            "lc-cdu",
            "raritan-px3"
        ]
    );
    for profile in &builtin {
        assert_eq!(
            profile.path,
            Path::new(&format!("fixtures/profiles/{}.toml", profile.model))
        );
    }

    // Every file in the folder is compiled in, and reads the same from disk.
    let on_disk = ProfileSet::load_dir(fixtures_dir()).unwrap();
    assert_eq!(
        on_disk.len(),
        builtin.len(),
        "a profile file is missing from BUILTIN_PROFILES"
    );
    for profile in &on_disk {
        let compiled = builtin.get(&profile.model).unwrap();
        assert_eq!(
            Profile {
                path: compiled.path.clone(),
                ..profile.clone()
            },
            *compiled
        );
    }
}

#[test]
fn field_names_are_simulator_quantities() {
    for profile in &ProfileSet::builtin().unwrap() {
        let known = profile.kind.quantities();
        for field in &profile.fields {
            assert!(
                known.contains(&field.name.as_str()),
                "{}: field {} is not a {} quantity",
                profile.model,
                field.name,
                profile.kind
            );
        }
    }
}

#[test]
fn full_profiles_cover_every_quantity_of_their_kind() {
    let set = ProfileSet::builtin().unwrap();
    for model in ["eastron-sdm630", "lc-cdu", "inrow-acu"] {
        let profile = set.get(model).unwrap();
        for quantity in profile.kind.quantities() {
            assert!(
                profile.field(quantity).is_some(),
                "{model} lacks {quantity}"
            );
        }
    }
}

#[test]
fn shipped_profiles_cover_every_encoding() {
    let set = ProfileSet::builtin().unwrap();
    let mut types = BTreeSet::new();
    let mut orders = BTreeSet::new();
    let mut addressing = BTreeSet::new();
    let mut bool_tables = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let mut sentinels = 0;
    for profile in &set {
        addressing.insert(profile.addressing.as_str());
        kinds.insert(profile.kind.as_str());
        for field in &profile.fields {
            types.insert(field.data_type.as_str());
            if field.data_type == DataType::Bool {
                bool_tables.insert(field.table.as_str());
            } else if field.data_type.width(field.length) > 1 && field.data_type != DataType::String
            {
                // Word order only tells on multi-register numbers.
                orders.insert(field.order.as_str());
            }
            sentinels += field.sentinels.len();
        }
    }
    let all_types: BTreeSet<&str> = DataType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, all_types);
    let all_orders: BTreeSet<&str> = WordOrder::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(orders, all_orders);
    assert_eq!(
        addressing,
        BTreeSet::from(["modicon", "one-based", "zero-based"])
    );
    assert_eq!(bool_tables, BTreeSet::from(["coil", "discrete_input"]));
    assert_eq!(
        kinds,
        BTreeSet::from(["cdu", "energy_meter", "inrow_unit", "rack_pdu"])
    );
    assert!(sentinels > 0);
}

#[test]
fn addresses_are_converted_to_the_wire() {
    let set = ProfileSet::builtin().unwrap();

    // Modicon 30343 is input register 342; the table is implied.
    let sdm = set.get("eastron-sdm630").unwrap();
    assert_eq!(sdm.addressing, Addressing::Modicon);
    let total = sdm.field("total_kwh").unwrap();
    assert_eq!(
        (total.table, total.address, total.end_address()),
        (Table::Input, 342, 343)
    );
    let voltage = sdm.field("voltage_l1").unwrap();
    assert_eq!(
        (voltage.address, voltage.data_type, voltage.order),
        (0, DataType::Float32, WordOrder::ABCD)
    );
    assert_eq!(sdm.field("power_total_kw").unwrap().scale, 0.001);
    assert_eq!(
        sdm.field("max_demand_kw").unwrap().poll,
        Duration::from_secs(60)
    );
    assert_eq!(
        sdm.field("frequency_hz").unwrap().poll,
        Duration::from_secs(10)
    );
    assert_eq!(sdm.max_registers_per_request, 125);
    assert_eq!(sdm.max_bits_per_request, 2000);

    // One-based register 116 is wire address 115.
    let ipdu = set.get("cn-ipdu").unwrap();
    let e2 = ipdu.field("energy_l2_kwh").unwrap();
    assert_eq!(
        (e2.table, e2.address, e2.width(), e2.data_type),
        (Table::Holding, 115, 2, DataType::Uint32)
    );
    assert_eq!(e2.scale, 0.01);
    let v3 = ipdu.field("voltage_l3").unwrap();
    assert_eq!(
        (v3.address, v3.sentinels.as_slice()),
        (120, &[Sentinel::Raw(0xFFFF)][..])
    );
    assert_eq!(ipdu.field("energy_kwh").unwrap().address, 131);
    assert_eq!(ipdu.fields.len(), 26);

    let meter = set.get("cn-dtsd-meter").unwrap();
    let power = meter.field("power_total_kw").unwrap();
    assert_eq!(
        (power.address, power.data_type, power.order),
        (8, DataType::Int32, WordOrder::DCBA)
    );
    let import = meter.field("import_kwh").unwrap();
    assert_eq!(
        (import.address, import.data_type, import.scale),
        (10, DataType::Uint32, 0.001)
    );

    // Zero-based addresses are taken as written.
    let px3 = set.get("raritan-px3").unwrap();
    assert_eq!(px3.field("voltage_l1").unwrap().address, 12296);
    assert_eq!(px3.field("frequency_hz").unwrap().address, 12322);
    let name = px3.field("model_name").unwrap();
    assert_eq!(
        (name.data_type, name.length, name.width()),
        (DataType::String, 16, 16)
    );
    assert_eq!(px3.field("energy_kwh").unwrap().data_type, DataType::Uint64);

    let cdu = set.get("lc-cdu").unwrap();
    assert_eq!(cdu.poll, Duration::from_secs(5));
    let t3 = cdu.field("secondary_supply_temp_3").unwrap();
    assert_eq!(
        (t3.data_type, t3.sentinels.as_slice()),
        (DataType::Int16, &[Sentinel::Raw(0x8000)][..])
    );
    assert_eq!(t3.poll, Duration::from_secs(1));
    let alarms: Vec<(u16, Option<u8>)> = [
        "low_flow_alarm",
        "high_supply_temp_alarm",
        "filter_dirty_alarm",
    ]
    .iter()
    .map(|n| cdu.field(n).unwrap())
    .map(|f| (f.address, f.bit))
    .collect();
    assert_eq!(alarms, [(1, Some(0)), (1, Some(1)), (1, Some(2))]);
    assert_eq!(cdu.field("pump_2_running").unwrap().table, Table::Coil);
    assert_eq!(
        cdu.field("leak_detected").unwrap().table,
        Table::DiscreteInput
    );
    assert_eq!(cdu.fields_in(Table::DiscreteInput).count(), 4);
    assert_eq!(cdu.field("serial_number").unwrap().length, 8);

    let acu = set.get("inrow-acu").unwrap();
    assert_eq!(acu.max_registers_per_request, 60);
    assert_eq!(
        acu.field("return_air_temp").unwrap().sentinels,
        [Sentinel::NaN]
    );
    let energy = acu.field("energy_kwh").unwrap();
    assert_eq!(
        (energy.data_type, energy.order, energy.address),
        (DataType::Float64, WordOrder::DCBA, 12)
    );
    assert_eq!(acu.kind, DeviceKind::InrowUnit);
    // Declared lines point at the [[field]] header.
    let text = std::fs::read_to_string(fixtures_dir().join("inrow-acu.toml")).unwrap();
    let line = text.lines().nth(energy.line - 1).unwrap();
    assert_eq!(line, "[[field]]");
    assert!(text
        .lines()
        .nth(energy.line)
        .unwrap()
        .contains("energy_kwh"));
}

fn one_field(field: &str) -> Result<Profile, tidewatch_devices::ConfigError> {
    let text = format!(
        "[profile]\nmodel = \"t\"\nkind = \"cdu\"\naddressing = \"zero-based\"\n\n[[field]]\n{field}\n"
    );
    Profile::from_str(&text, "t.toml")
}

#[test]
fn sentinels_are_raw_values_of_the_field_width() {
    let raw = |field: &str| one_field(field).unwrap().fields[0].sentinels.clone();
    let base = "name = \"power_kw\"\ntable = \"input\"\naddress = 0\n";
    // Negative numbers are two's complement of the width.
    assert_eq!(
        raw(&format!("{base}type = \"int16\"\nsentinel = [-1, 0x8000]")),
        [Sentinel::Raw(0xFFFF), Sentinel::Raw(0x8000)]
    );
    assert_eq!(
        raw(&format!("{base}type = \"uint64\"\nsentinel = [-1]")),
        [Sentinel::Raw(u64::MAX)]
    );
    assert_eq!(
        raw(&format!("{base}type = \"int32\"\nsentinel = [0xFFFFFFFF]")),
        [Sentinel::Raw(0xFFFF_FFFF)]
    );
    assert_eq!(
        raw(&format!(
            "{base}type = \"float64\"\nsentinel = [nan, \"NaN\"]"
        )),
        [Sentinel::NaN, Sentinel::NaN]
    );
    assert!(one_field(&format!("{base}type = \"int16\"\nsentinel = [-32769]")).is_err());
    assert!(one_field(&format!(
        "{base}type = \"uint32\"\nsentinel = [0x100000000]"
    ))
    .is_err());
    assert!(one_field(&format!("{base}type = \"float32\"\nsentinel = [1.5]")).is_err());
    assert!(one_field(
        "name = \"leak_detected\"\ntable = \"coil\"\naddress = 0\ntype = \"bool\"\nsentinel = [1]"
    )
    .is_err());
}

#[test]
fn validation_edges() {
    // Two bit fields may share a register when their bits differ (shipped lc-cdu does).
    // A field may not run past address 65535.
    let err =
        one_field("name = \"power_kw\"\ntable = \"input\"\naddress = 65534\ntype = \"float64\"")
            .unwrap_err();
    assert_eq!(err.field(), "field[0].address");
    assert!(one_field(
        "name = \"power_kw\"\ntable = \"input\"\naddress = 65534\ntype = \"float32\""
    )
    .is_ok());
    // A field may end at 65535, also when other fields are checked against it for
    // overlap (address + width overflowed a u16 there).
    let profile = one_field(
        "name = \"power_kw\"\ntable = \"input\"\naddress = 65534\ntype = \"float32\"\n\n\
         [[field]]\nname = \"status\"\ntable = \"input\"\naddress = 65533\ntype = \"uint16\"",
    )
    .unwrap();
    assert_eq!(profile.fields[0].end_address(), 65535);
    let err = one_field(
        "name = \"power_kw\"\ntable = \"input\"\naddress = 65534\ntype = \"float32\"\n\n\
         [[field]]\nname = \"status\"\ntable = \"input\"\naddress = 65535\ntype = \"uint16\"",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("input registers 65534-65535"),
        "{err}"
    );
    // A field wider than one request allows.
    let text = "[profile]\nmodel = \"t\"\nkind = \"cdu\"\naddressing = \"zero-based\"\nmax_registers_per_request = 2\n\n\
                [[field]]\nname = \"x\"\ntable = \"input\"\naddress = 0\ntype = \"uint64\"\n";
    assert_eq!(
        Profile::from_str(text, "t.toml").unwrap_err().field(),
        "field[0].type"
    );
    // bit only with type bit; length only with string; order not on bool.
    assert_eq!(
        one_field("name = \"x\"\ntable = \"input\"\naddress = 0\ntype = \"int16\"\nbit = 1")
            .unwrap_err()
            .field(),
        "field[0].bit"
    );
    assert_eq!(
        one_field("name = \"x\"\ntable = \"input\"\naddress = 0\ntype = \"int16\"\nlength = 1")
            .unwrap_err()
            .field(),
        "field[0].length"
    );
    assert_eq!(
        one_field("name = \"x\"\ntable = \"coil\"\naddress = 0\ntype = \"bool\"\norder = \"CDAB\"")
            .unwrap_err()
            .field(),
        "field[0].order"
    );
    assert_eq!(
        one_field("name = \"x\"\ntable = \"input\"\naddress = 0\ntype = \"bit\"")
            .unwrap_err()
            .field(),
        "field[0]"
    );
    // zero-based needs a table.
    assert_eq!(
        one_field("name = \"x\"\naddress = 0\ntype = \"int16\"")
            .unwrap_err()
            .field(),
        "field[0].table"
    );
    // Field names become field keys.
    assert_eq!(
        one_field("name = \"Flow Rate\"\ntable = \"input\"\naddress = 0\ntype = \"int16\"")
            .unwrap_err()
            .field(),
        "field[0].name"
    );
    // A profile without fields.
    let err = Profile::from_str(
        "[profile]\nmodel = \"t\"\nkind = \"cdu\"\naddressing = \"zero-based\"\n",
        "t.toml",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.toml:1:1: profile: a profile needs at least one [[field]]"
    );
}
