//! The profile file format (`[profile]` and `[[field]]`) and its validation.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{check_id, Source};
use crate::error::{ConfigError, Location};
use crate::profile::{
    Addressing, DataType, DeviceKind, Field, Profile, Sentinel, Table, WordOrder,
    DEFAULT_MAX_BITS_PER_REQUEST, DEFAULT_MAX_REGISTERS_PER_REQUEST, DEFAULT_POLL,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileDoc {
    profile: Spanned<HeaderDoc>,
    #[serde(default)]
    field: Vec<Spanned<FieldDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderDoc {
    model: Spanned<String>,
    kind: Spanned<String>,
    vendor: Option<String>,
    description: Option<String>,
    addressing: Spanned<String>,
    max_registers_per_request: Option<Spanned<i64>>,
    max_bits_per_request: Option<Spanned<i64>>,
    poll: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDoc {
    name: Spanned<String>,
    table: Option<Spanned<String>>,
    address: Spanned<i64>,
    #[serde(rename = "type")]
    data_type: Spanned<String>,
    order: Option<Spanned<String>>,
    scale: Option<Spanned<f64>>,
    offset: Option<Spanned<f64>>,
    unit: Option<Spanned<String>>,
    sentinel: Option<Vec<Spanned<toml::Value>>>,
    bit: Option<Spanned<i64>>,
    length: Option<Spanned<i64>>,
    poll: Option<Spanned<String>>,
}

/// Profile-wide settings the fields are checked against.
struct Context {
    addressing: Addressing,
    max_registers: u16,
    poll: Duration,
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Profile, ConfigError> {
    let src = Source::new(path, text);
    let doc: ProfileDoc = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let header = doc.profile.get_ref();

    let model = check_id(&src, &header.model, "profile.model")?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if model != stem {
        return Err(src.error(
            header.model.span(),
            "profile.model",
            format!(
                "model \"{model}\" must equal the file name without .toml (\"{stem}\"): \
                 sites name profiles by file"
            ),
        ));
    }
    let kind: DeviceKind = src.keyword(&header.kind, "profile.kind")?;
    let addressing: Addressing = src.keyword(&header.addressing, "profile.addressing")?;
    let max_registers = match &header.max_registers_per_request {
        Some(v) => src.integer_in(v, "profile.max_registers_per_request", 1, 125)? as u16,
        None => DEFAULT_MAX_REGISTERS_PER_REQUEST,
    };
    let max_bits = match &header.max_bits_per_request {
        Some(v) => src.integer_in(v, "profile.max_bits_per_request", 1, 2000)? as u16,
        None => DEFAULT_MAX_BITS_PER_REQUEST,
    };
    let poll = match &header.poll {
        Some(v) => positive_duration(&src, v, "profile.poll")?,
        None => DEFAULT_POLL,
    };
    if doc.field.is_empty() {
        return Err(src.error(
            doc.profile.span(),
            "profile",
            "a profile needs at least one [[field]]",
        ));
    }

    let cx = Context {
        addressing,
        max_registers,
        poll,
    };
    let mut fields: Vec<Field> = Vec::with_capacity(doc.field.len());
    for (i, fd) in doc.field.iter().enumerate() {
        let field = parse_field(&src, &cx, i, fd)?;
        check_against_earlier(&src, &cx, i, fd.get_ref(), &field, &fields)?;
        fields.push(field);
    }

    Ok(Profile {
        model,
        kind,
        vendor: header.vendor.clone(),
        description: header.description.clone(),
        addressing,
        max_registers_per_request: max_registers,
        max_bits_per_request: max_bits,
        poll,
        fields,
        path: path.to_owned(),
    })
}

fn positive_duration(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<Duration, ConfigError> {
    let d = src.duration(v, field)?;
    if d.is_zero() {
        return Err(src.error(v.span(), field, "must be longer than zero"));
    }
    Ok(d)
}

fn parse_field(
    src: &Source<'_>,
    cx: &Context,
    i: usize,
    spanned: &Spanned<FieldDoc>,
) -> Result<Field, ConfigError> {
    let fd = spanned.get_ref();
    let p = format!("field[{i}]");
    let at = |key: &str| format!("{p}.{key}");

    let name = fd.name.get_ref();
    let name_ok = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(src.error(
            fd.name.span(),
            at("name"),
            format!(
                "invalid field name \"{name}\": use lower-case letters, digits and '_', \
                 starting with a letter (it becomes a field key of stored points)"
            ),
        ));
    }

    let data_type: DataType = src.keyword(&fd.data_type, &at("type"))?;
    let (table, address) = resolve_address(src, cx.addressing, fd, &p)?;

    if data_type == DataType::Bool && !table.is_bits() {
        return Err(src.error(
            fd.data_type.span(),
            at("type"),
            format!(
                "type bool needs table coil or discrete_input, but this field is in table {}; \
                 use type bit for one bit of a register",
                table.as_str()
            ),
        ));
    }
    if data_type != DataType::Bool && table.is_bits() {
        return Err(src.error(
            fd.data_type.span(),
            at("type"),
            format!(
                "type {} needs a register table (holding or input), but this field is in \
                 table {}; coils and discrete inputs hold type bool",
                data_type.as_str(),
                table.as_str()
            ),
        ));
    }

    let bit = match (&fd.bit, data_type) {
        (Some(bit), DataType::Bit) => {
            let b = *bit.get_ref();
            if !(0..=15).contains(&b) {
                return Err(src.error(
                    bit.span(),
                    at("bit"),
                    format!("bit {b} is out of range: a register has bits 0..=15 (0 = least significant)"),
                ));
            }
            Some(b as u8)
        }
        (None, DataType::Bit) => {
            return Err(src.error(
                spanned.span(),
                &p,
                "missing field `bit`: type bit needs the bit number inside the register (0..=15)",
            ))
        }
        (Some(bit), other) => {
            return Err(src.error(
                bit.span(),
                at("bit"),
                format!("`bit` only applies to type bit, not to {}", other.as_str()),
            ))
        }
        (None, _) => None,
    };

    let length = match (&fd.length, data_type) {
        (Some(length), DataType::String) => {
            let n = *length.get_ref();
            let max = i64::from(cx.max_registers);
            if !(1..=max).contains(&n) {
                return Err(src.error(
                    length.span(),
                    at("length"),
                    format!(
                        "length {n} is out of range: a string is 1..={max} registers \
                         (it must fit one request of max_registers_per_request = {max})"
                    ),
                ));
            }
            n as u16
        }
        (None, DataType::String) => {
            return Err(src.error(
                spanned.span(),
                &p,
                "missing field `length`: type string needs its length in registers \
                 (two characters each)",
            ))
        }
        (Some(length), other) => {
            return Err(src.error(
                length.span(),
                at("length"),
                format!(
                    "`length` only applies to type string; a {} field has a fixed width",
                    other.as_str()
                ),
            ))
        }
        (None, _) => 0,
    };

    let order = match &fd.order {
        Some(order) if data_type == DataType::Bool => {
            return Err(src.error(
                order.span(),
                at("order"),
                "`order` does not apply to type bool",
            ))
        }
        Some(order) => src.keyword::<WordOrder>(order, &at("order"))?,
        None => WordOrder::ABCD,
    };

    let width = data_type.width(length);
    if !table.is_bits() && width > cx.max_registers {
        return Err(src.error(
            fd.data_type.span(),
            at("type"),
            format!(
                "a {} field takes {width} registers, more than one request may read \
                 (max_registers_per_request = {})",
                data_type.as_str(),
                cx.max_registers
            ),
        ));
    }
    if u32::from(address) + u32::from(width) - 1 > 65535 {
        return Err(src.error(
            fd.address.span(),
            at("address"),
            format!(
                "the field takes {width} registers from wire address {address}, past the \
                 last address 65535"
            ),
        ));
    }

    let numeric = !matches!(data_type, DataType::Bool | DataType::Bit | DataType::String);
    let not_numeric = |value_span, key: &str| {
        src.error(
            value_span,
            at(key),
            format!(
                "`{key}` only applies to numeric fields, not to type {}",
                data_type.as_str()
            ),
        )
    };
    let scale = match &fd.scale {
        Some(s) if !numeric => return Err(not_numeric(s.span(), "scale")),
        Some(s) => {
            let v = *s.get_ref();
            if !v.is_finite() || v == 0.0 {
                return Err(src.error(
                    s.span(),
                    at("scale"),
                    format!("scale {v} is invalid: it must be a finite number other than 0"),
                ));
            }
            v
        }
        None => 1.0,
    };
    let offset = match &fd.offset {
        Some(o) if !numeric => return Err(not_numeric(o.span(), "offset")),
        Some(o) => {
            let v = *o.get_ref();
            if !v.is_finite() {
                return Err(src.error(
                    o.span(),
                    at("offset"),
                    format!("offset {v} is invalid: it must be finite"),
                ));
            }
            v
        }
        None => 0.0,
    };
    let unit = match &fd.unit {
        Some(u) if !numeric => return Err(not_numeric(u.span(), "unit")),
        Some(u) => Some(u.get_ref().clone()),
        None => None,
    };

    let mut sentinels = Vec::new();
    if let Some(items) = &fd.sentinel {
        for (k, item) in items.iter().enumerate() {
            if !numeric {
                return Err(not_numeric(item.span(), "sentinel"));
            }
            sentinels.push(parse_sentinel(
                src,
                data_type,
                item,
                &format!("{p}.sentinel[{k}]"),
            )?);
        }
    }

    let poll = match &fd.poll {
        Some(v) => positive_duration(src, v, &at("poll"))?,
        None => cx.poll,
    };

    Ok(Field {
        name: name.clone(),
        table,
        address,
        data_type,
        order,
        bit,
        length,
        scale,
        offset,
        unit,
        sentinels,
        poll,
        line: Location::of_offset(src.text, spanned.span().start).line,
    })
}

/// The table and wire address of a field, from `address` under the profile's
/// addressing and the optional `table`.
fn resolve_address(
    src: &Source<'_>,
    addressing: Addressing,
    fd: &FieldDoc,
    p: &str,
) -> Result<(Table, u16), ConfigError> {
    let table_path = format!("{p}.table");
    let address_path = format!("{p}.address");
    let given = match &fd.table {
        Some(t) => Some((src.keyword::<Table>(t, &table_path)?, t)),
        None => None,
    };
    let n = *fd.address.get_ref();
    let need_table = |what: &str| {
        src.error(
            fd.address.span(),
            &table_path,
            format!(
                "missing field `table`: with addressing = \"{what}\" the table \
                 (coil, discrete_input, holding or input) must be given"
            ),
        )
    };
    match addressing {
        Addressing::Modicon => {
            let (implied, wire) = modicon_address(n).ok_or_else(|| {
                src.error(
                    fd.address.span(),
                    &address_path,
                    format!(
                        "{n} has no valid modicon prefix: expected 0xxxx coil, 1xxxx discrete \
                         input, 3xxxx input register or 4xxxx holding register (x0001-x9999), \
                         or six digits 1xxxxx, 3xxxxx, 4xxxxx (x00001-x65536)"
                    ),
                )
            })?;
            if let Some((table, t)) = given {
                if table != implied {
                    return Err(src.error(
                        t.span(),
                        &table_path,
                        format!(
                            "table \"{}\" disagrees with modicon address {n}, which is {} {}",
                            table.as_str(),
                            article(implied),
                            implied.one()
                        ),
                    ));
                }
            }
            Ok((implied, wire))
        }
        Addressing::ZeroBased => {
            let Some((table, _)) = given else {
                return Err(need_table("zero-based"));
            };
            if !(0..=65535).contains(&n) {
                return Err(src.error(
                    fd.address.span(),
                    &address_path,
                    format!("address {n} is out of range: zero-based addresses are 0..=65535"),
                ));
            }
            Ok((table, n as u16))
        }
        Addressing::OneBased => {
            let Some((table, _)) = given else {
                return Err(need_table("one-based"));
            };
            if n == 0 {
                return Err(src.error(
                    fd.address.span(),
                    &address_path,
                    "address 0 does not exist with addressing = \"one-based\": numbering \
                     starts at 1 (wire address = number - 1)",
                ));
            }
            if !(1..=65536).contains(&n) {
                return Err(src.error(
                    fd.address.span(),
                    &address_path,
                    format!("address {n} is out of range: one-based addresses are 1..=65536"),
                ));
            }
            Ok((table, (n - 1) as u16))
        }
    }
}

/// Table and wire address of a Modicon register number, or `None` for a number with no
/// valid prefix. Coils can only be written in five digits (TOML integers have no leading
/// zeros, so a six-digit `0xxxxx` is indistinguishable).
fn modicon_address(n: i64) -> Option<(Table, u16)> {
    let (table, base) = match n {
        1..=9999 => (Table::Coil, 1),
        10001..=19999 => (Table::DiscreteInput, 10001),
        30001..=39999 => (Table::Input, 30001),
        40001..=49999 => (Table::Holding, 40001),
        100001..=165536 => (Table::DiscreteInput, 100001),
        300001..=365536 => (Table::Input, 300001),
        400001..=465536 => (Table::Holding, 400001),
        _ => return None,
    };
    Some((table, (n - base) as u16))
}

fn article(table: Table) -> &'static str {
    match table {
        Table::Input => "an",
        _ => "a",
    }
}

/// A wire address written the way the profile writes addresses.
fn written_address(addressing: Addressing, table: Table, wire: u16) -> u32 {
    let number = u32::from(wire) + 1;
    match addressing {
        Addressing::ZeroBased => u32::from(wire),
        Addressing::OneBased => number,
        Addressing::Modicon => {
            let five_digit = number <= 9999;
            let prefix = match table {
                Table::Coil => 0,
                Table::DiscreteInput => 1,
                Table::Input => 3,
                Table::Holding => 4,
            };
            prefix * if five_digit { 10_000 } else { 100_000 } + number
        }
    }
}

/// "holding registers 12296-12297", "bit 3 of holding register 1", "coil 5".
fn describe(addressing: Addressing, field: &Field) -> String {
    let first = written_address(addressing, field.table, field.address);
    match (field.data_type, field.bit) {
        (DataType::Bit, Some(bit)) => format!("bit {bit} of {} {first}", field.table.one()),
        _ if field.width() == 1 => format!("{} {first}", field.table.one()),
        _ => {
            let last = written_address(addressing, field.table, field.end_address());
            format!("{} {first}-{last}", field.table.many())
        }
    }
}

fn parse_sentinel(
    src: &Source<'_>,
    data_type: DataType,
    item: &Spanned<toml::Value>,
    field: &str,
) -> Result<Sentinel, ConfigError> {
    let written = src.text.get(item.span()).unwrap_or_default();
    let is_nan = match item.get_ref() {
        toml::Value::String(s) => s.eq_ignore_ascii_case("nan"),
        toml::Value::Float(f) => f.is_nan(),
        _ => false,
    };
    if is_nan {
        if !data_type.is_float() {
            return Err(src.error(
                item.span(),
                field,
                format!(
                    "sentinel {written} only applies to float32 and float64 fields, not to {}",
                    data_type.as_str()
                ),
            ));
        }
        return Ok(Sentinel::NaN);
    }
    let toml::Value::Integer(v) = item.get_ref() else {
        return Err(src.error(
            item.span(),
            field,
            format!(
                "sentinel {written} is not a raw register value: write an integer \
                 (e.g. 0xFFFF) or \"nan\" for floats"
            ),
        ));
    };
    let bits = 16 * u32::from(data_type.width(0));
    let v = *v;
    let fits = if bits >= 64 {
        true
    } else {
        let min = -(1i64 << (bits - 1));
        let max = (1i64 << bits) - 1;
        (min..=max).contains(&v)
    };
    if !fits {
        return Err(src.error(
            item.span(),
            field,
            format!(
                "sentinel {written} is wider than the {bits} bits of a {} field \
                 (raw values 0..=0x{:X}, or negative numbers as two's complement)",
                data_type.as_str(),
                (1u64 << bits) - 1
            ),
        ));
    }
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    Ok(Sentinel::Raw((v as u64) & mask))
}

/// Duplicate names and overlapping addresses, against the fields declared before.
fn check_against_earlier(
    src: &Source<'_>,
    cx: &Context,
    j: usize,
    fd: &FieldDoc,
    field: &Field,
    earlier: &[Field],
) -> Result<(), ConfigError> {
    if let Some((i, first)) = earlier
        .iter()
        .enumerate()
        .find(|(_, f)| f.name == field.name)
    {
        return Err(src.error(
            fd.name.span(),
            format!("field[{j}].name"),
            format!(
                "duplicate field name \"{}\": field[{i}] at line {} has it already",
                field.name, first.line
            ),
        ));
    }
    for (i, other) in earlier.iter().enumerate() {
        if other.table != field.table
            || other.address > field.end_address()
            || field.address > other.end_address()
        {
            continue;
        }
        let both_bits = other.data_type == DataType::Bit && field.data_type == DataType::Bit;
        if both_bits && other.bit != field.bit {
            continue;
        }
        let message = if both_bits {
            format!(
                "\"{}\" uses {}, which \"{}\" (field[{i}] at line {}) uses already",
                field.name,
                describe(cx.addressing, field),
                other.name,
                other.line
            )
        } else {
            let mixed = other.data_type == DataType::Bit || field.data_type == DataType::Bit;
            format!(
                "\"{}\" ({}) overlaps \"{}\" ({}, field[{i}] at line {}){}",
                field.name,
                describe(cx.addressing, field),
                other.name,
                describe(cx.addressing, other),
                other.line,
                if mixed {
                    "; a register holding bit fields may hold nothing else"
                } else {
                    ""
                }
            )
        };
        return Err(src.error(fd.address.span(), format!("field[{j}].address"), message));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modicon_numbers() {
        assert_eq!(modicon_address(1), Some((Table::Coil, 0)));
        assert_eq!(modicon_address(9999), Some((Table::Coil, 9998)));
        assert_eq!(modicon_address(10001), Some((Table::DiscreteInput, 0)));
        assert_eq!(modicon_address(30001), Some((Table::Input, 0)));
        assert_eq!(modicon_address(30343), Some((Table::Input, 342)));
        assert_eq!(modicon_address(40001), Some((Table::Holding, 0)));
        assert_eq!(modicon_address(465536), Some((Table::Holding, 65535)));
        assert_eq!(modicon_address(300001), Some((Table::Input, 0)));
        for bad in [
            0, 10000, 20001, 30000, 40000, 50001, 100000, 165537, 200001, 465537, -1,
        ] {
            assert_eq!(modicon_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn written_addresses_round_trip() {
        assert_eq!(
            written_address(Addressing::Modicon, Table::Input, 342),
            30343
        );
        assert_eq!(
            written_address(Addressing::Modicon, Table::Holding, 65535),
            465536
        );
        assert_eq!(written_address(Addressing::Modicon, Table::Coil, 4), 5);
        assert_eq!(
            written_address(Addressing::OneBased, Table::Holding, 100),
            101
        );
        assert_eq!(
            written_address(Addressing::ZeroBased, Table::Holding, 12296),
            12296
        );
        for wire in [0u16, 1, 9997, 9998, 9999, 65535] {
            for table in [Table::DiscreteInput, Table::Input, Table::Holding] {
                let n = written_address(Addressing::Modicon, table, wire);
                assert_eq!(modicon_address(i64::from(n)), Some((table, wire)));
            }
        }
    }
}
