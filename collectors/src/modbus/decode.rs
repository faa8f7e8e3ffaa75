//! Decoding: from the registers (or bits) of a read response to engineering values.
//!
//! Written from the profile format's definition (`tidewatch_devices::WordOrder`), not
//! shared with the simulator's encoder: a value's big-endian bytes are `A B C D ...`
//! (A most significant); `CDAB` and `DCBA` send the 16-bit words least significant
//! first, `BADC` and `DCBA` swap the two bytes inside every register. For 64-bit values
//! the same rule spans four words. Strings keep their register order (they are text,
//! not one number): only the byte swap applies, and NUL ends the text.
//!
//! The engineering value is `raw * scale + offset`. A raw value equal to one of the
//! field's sentinels ("not available", compared as the unsigned bit pattern of the
//! field's width once the order is undone, or NaN for floats) decodes to
//! [`Decoded::NotAvailable`]: the collector skips and counts it, never stores it.

use tidewatch_devices::{DataType, Field, Sentinel, WordOrder};

/// What one field decoded to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A number, scale and offset applied (booleans and bits are 0.0 or 1.0, as the
    /// simulator's backfill writes them, so collected and backfilled series share a
    /// field type).
    Number(f64),
    /// Text of a `string` field.
    Text(String),
    /// The device reports "not available" (a sentinel).
    NotAvailable,
}

/// A response that cannot be decoded as the field it should carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("field \"{field}\": the response has {got} values where {need} were expected")]
    Short {
        field: String,
        need: usize,
        got: usize,
    },
    #[error("field \"{field}\" is a {data_type} field, which is not read from {what}")]
    WrongTable {
        field: String,
        data_type: &'static str,
        what: &'static str,
    },
    #[error("field \"{field}\": the registers do not hold UTF-8 text")]
    NotText { field: String },
    #[error("field \"{field}\": the value is not finite (add sentinel = [\"nan\"] to the profile if the device means \"not available\")")]
    NotFinite { field: String },
    #[error("field \"{field}\": bit {bit} is outside a 16-bit register")]
    BadBit { field: String, bit: u8 },
}

/// The unsigned bit pattern of a value sent in `words` (1 to 4 registers) under
/// `order`: the big-endian value `A B C D ...` with the word and byte order undone.
pub fn pattern(words: &[u16], order: WordOrder) -> u64 {
    let n = words.len();
    let mut out: u64 = 0;
    for i in 0..n {
        let w = if order.words_swapped() {
            words[n - 1 - i]
        } else {
            words[i]
        };
        let w = if order.bytes_swapped() {
            w.swap_bytes()
        } else {
            w
        };
        out = (out << 16) | u64::from(w);
    }
    out
}

/// Decode a register field from the registers it occupies (`words` starts at the
/// field's address; extra words after it are ignored).
pub fn decode_registers(field: &Field, words: &[u16]) -> Result<Decoded, DecodeError> {
    let width = usize::from(field.width());
    if words.len() < width {
        return Err(DecodeError::Short {
            field: field.name.clone(),
            need: width,
            got: words.len(),
        });
    }
    let words = &words[..width];
    let (raw_pattern, number) = match field.data_type {
        DataType::Bool => {
            return Err(DecodeError::WrongTable {
                field: field.name.clone(),
                data_type: "bool",
                what: "registers",
            })
        }
        DataType::String => return decode_text(field, words),
        DataType::Bit => {
            let bit = field.bit.unwrap_or(0);
            if bit > 15 {
                return Err(DecodeError::BadBit {
                    field: field.name.clone(),
                    bit,
                });
            }
            let reg = pattern(words, field.order);
            (reg, ((reg >> bit) & 1) as f64)
        }
        DataType::Int16 => {
            let p = pattern(words, field.order);
            (p, f64::from(p as u16 as i16))
        }
        DataType::Uint16 => {
            let p = pattern(words, field.order);
            (p, f64::from(p as u16))
        }
        DataType::Int32 => {
            let p = pattern(words, field.order);
            (p, f64::from(p as u32 as i32))
        }
        DataType::Uint32 => {
            let p = pattern(words, field.order);
            (p, f64::from(p as u32))
        }
        DataType::Int64 => {
            let p = pattern(words, field.order);
            (p, p as i64 as f64)
        }
        DataType::Uint64 => {
            let p = pattern(words, field.order);
            (p, p as f64)
        }
        DataType::Float32 => {
            let p = pattern(words, field.order);
            (p, f64::from(f32::from_bits(p as u32)))
        }
        DataType::Float64 => {
            let p = pattern(words, field.order);
            (p, f64::from_bits(p))
        }
    };
    // A bit inside a register has no sentinel of its own: the profile format allows
    // sentinels on numeric types, and a bit field's register is shared.
    if field.data_type != DataType::Bit {
        for s in &field.sentinels {
            let hit = match *s {
                Sentinel::Raw(r) => r == raw_pattern,
                Sentinel::NaN => number.is_nan(),
            };
            if hit {
                return Ok(Decoded::NotAvailable);
            }
        }
    }
    let value = number * field.scale + field.offset;
    if !value.is_finite() {
        return Err(DecodeError::NotFinite {
            field: field.name.clone(),
        });
    }
    Ok(Decoded::Number(value))
}

/// Decode a `bool` field (a coil or discrete input) from the bits starting at its
/// address.
pub fn decode_bits(field: &Field, bits: &[bool]) -> Result<Decoded, DecodeError> {
    if field.data_type != DataType::Bool {
        return Err(DecodeError::WrongTable {
            field: field.name.clone(),
            data_type: field.data_type.as_str(),
            what: "coils or discrete inputs",
        });
    }
    match bits.first() {
        Some(&b) => Ok(Decoded::Number(if b { 1.0 } else { 0.0 })),
        None => Err(DecodeError::Short {
            field: field.name.clone(),
            need: 1,
            got: 0,
        }),
    }
}

fn decode_text(field: &Field, words: &[u16]) -> Result<Decoded, DecodeError> {
    let mut bytes = Vec::with_capacity(words.len() * 2);
    for &w in words {
        let [hi, lo] = w.to_be_bytes();
        if field.order.bytes_swapped() {
            bytes.extend([lo, hi]);
        } else {
            bytes.extend([hi, lo]);
        }
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.truncate(end);
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Decoded::Text(s)),
        Err(_) => Err(DecodeError::NotText {
            field: field.name.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Known register contents, written out by hand from datasheet conventions (never
    //! produced by an encoder), and the values they must decode to.
    use super::*;
    use std::time::Duration;
    use tidewatch_devices::Table;

    fn field(data_type: DataType, order: WordOrder) -> Field {
        Field {
            name: "x".into(),
            table: Table::Holding,
            address: 0,
            data_type,
            order,
            bit: None,
            length: 0,
            scale: 1.0,
            offset: 0.0,
            unit: None,
            sentinels: vec![],
            poll: Duration::from_secs(10),
            line: 1,
        }
    }

    fn num(f: &Field, words: &[u16]) -> f64 {
        match decode_registers(f, words).unwrap() {
            Decoded::Number(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn float32_in_every_order() {
        // 230.5 V as IEEE-754 single: 0x4366_8000 (A=43 B=66 C=80 D=00), as an
        // SDM630 sends it in input registers 30001-30002 (ABCD).
        let cases = [
            (WordOrder::ABCD, [0x4366, 0x8000]),
            (WordOrder::CDAB, [0x8000, 0x4366]),
            (WordOrder::BADC, [0x6643, 0x0080]),
            (WordOrder::DCBA, [0x0080, 0x6643]),
        ];
        for (order, words) in cases {
            assert_eq!(
                num(&field(DataType::Float32, order), &words),
                230.5,
                "{order}"
            );
        }
        // 49.98 Hz: 0x4247_EB85 -> 49.979999542236328 (the f32 nearest 49.98).
        let v = num(
            &field(DataType::Float32, WordOrder::ABCD),
            &[0x4247, 0xEB85],
        );
        assert_eq!(v, f64::from(49.98_f32));
        // -1.5: 0xBFC0_0000.
        assert_eq!(
            num(
                &field(DataType::Float32, WordOrder::CDAB),
                &[0x0000, 0xBFC0]
            ),
            -1.5
        );
    }

    #[test]
    fn float64_in_every_order() {
        // 12345.678 as double: 0x40C8_1CD6_C8B4_3958.
        let abcd = [0x40C8, 0x1CD6, 0xC8B4, 0x3958];
        let cases = [
            (WordOrder::ABCD, abcd),
            (WordOrder::CDAB, [0x3958, 0xC8B4, 0x1CD6, 0x40C8]),
            (WordOrder::BADC, [0xC840, 0xD61C, 0xB4C8, 0x5839]),
            (WordOrder::DCBA, [0x5839, 0xB4C8, 0xD61C, 0xC840]),
        ];
        for (order, words) in cases {
            assert_eq!(
                num(&field(DataType::Float64, order), &words),
                12345.678,
                "{order}"
            );
        }
    }

    #[test]
    fn sixteen_bit_integers() {
        // -12.3 C as int16 in 0.1 C: -123 = 0xFF85.
        let mut t = field(DataType::Int16, WordOrder::ABCD);
        t.scale = 0.1;
        assert!((num(&t, &[0xFF85]) - -12.3).abs() < 1e-12);
        // The same register from a little-endian controller (BADC): 0x85FF.
        t.order = WordOrder::BADC;
        assert!((num(&t, &[0x85FF]) - -12.3).abs() < 1e-12);
        // CDAB on one register is AB; DCBA is BA.
        t.order = WordOrder::CDAB;
        assert!((num(&t, &[0xFF85]) - -12.3).abs() < 1e-12);
        t.order = WordOrder::DCBA;
        assert!((num(&t, &[0x85FF]) - -12.3).abs() < 1e-12);
        // 230.4 V as uint16 in 0.1 V: 2304 = 0x0900.
        let mut v = field(DataType::Uint16, WordOrder::ABCD);
        v.scale = 0.1;
        assert!((num(&v, &[0x0900]) - 230.4).abs() < 1e-12);
        assert_eq!(
            num(&field(DataType::Uint16, WordOrder::ABCD), &[0xFFFE]),
            65534.0
        );
        assert_eq!(
            num(&field(DataType::Int16, WordOrder::ABCD), &[0x8001]),
            -32767.0
        );
    }

    #[test]
    fn thirty_two_bit_integers() {
        // 123456 = 0x0001_E240.
        let cases = [
            (WordOrder::ABCD, [0x0001, 0xE240]),
            (WordOrder::CDAB, [0xE240, 0x0001]),
            (WordOrder::BADC, [0x0100, 0x40E2]),
            (WordOrder::DCBA, [0x40E2, 0x0100]),
        ];
        for (order, words) in cases {
            assert_eq!(num(&field(DataType::Uint32, order), &words), 123456.0);
            assert_eq!(num(&field(DataType::Int32, order), &words), 123456.0);
        }
        // -2 500 W on a DTSD-style meter: int32 0xFFFF_F63C sent DCBA: 0x3CF6, 0xFFFF.
        let mut p = field(DataType::Int32, WordOrder::DCBA);
        p.scale = 0.001;
        assert!((num(&p, &[0x3CF6, 0xFFFF]) - -2.5).abs() < 1e-12);
        // Flow 0.1 L/min, CDAB: 1234.5 L/min = 12345 = 0x0000_3039.
        let mut f = field(DataType::Int32, WordOrder::CDAB);
        f.scale = 0.1;
        assert!((num(&f, &[0x3039, 0x0000]) - 1234.5).abs() < 1e-9);
        // The top of a 32-bit Wh counter: 0xFFFF_FFFF Wh = 4 294 967.295 kWh.
        let mut e = field(DataType::Uint32, WordOrder::ABCD);
        e.scale = 0.001;
        assert!((num(&e, &[0xFFFF, 0xFFFF]) - 4_294_967.295).abs() < 1e-6);
    }

    #[test]
    fn sixty_four_bit_integers() {
        // 1_000_000_000_123 = 0x0000_00E8_D4A5_107B.
        let abcd = [0x0000, 0x00E8, 0xD4A5, 0x107B];
        let cases = [
            (WordOrder::ABCD, abcd),
            (WordOrder::CDAB, [0x107B, 0xD4A5, 0x00E8, 0x0000]),
            (WordOrder::BADC, [0x0000, 0xE800, 0xA5D4, 0x7B10]),
            (WordOrder::DCBA, [0x7B10, 0xA5D4, 0xE800, 0x0000]),
        ];
        for (order, words) in cases {
            assert_eq!(
                num(&field(DataType::Uint64, order), &words),
                1_000_000_000_123.0
            );
            assert_eq!(
                num(&field(DataType::Int64, order), &words),
                1_000_000_000_123.0
            );
        }
        // -2 as int64 (CDAB): 0xFFFF_FFFF_FFFF_FFFE -> words FFFE FFFF FFFF FFFF.
        assert_eq!(
            num(
                &field(DataType::Int64, WordOrder::CDAB),
                &[0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF]
            ),
            -2.0
        );
    }

    #[test]
    fn scale_and_offset() {
        // A 4-20 mA pressure transmitter scaled 0..10 bar from a 0..10000 count:
        // 6000 counts * 0.001 - 0 = 6.0; with an offset of -1 bar: 5.0.
        let mut f = field(DataType::Uint16, WordOrder::ABCD);
        f.scale = 0.001;
        f.offset = -1.0;
        assert!((num(&f, &[6000]) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn sentinels_are_not_available() {
        let mut t = field(DataType::Int16, WordOrder::ABCD);
        t.sentinels = vec![Sentinel::Raw(0x8000)];
        t.scale = 0.1;
        assert_eq!(
            decode_registers(&t, &[0x8000]).unwrap(),
            Decoded::NotAvailable
        );
        assert!(matches!(
            decode_registers(&t, &[0x8001]).unwrap(),
            Decoded::Number(_)
        ));
        // The sentinel is the pattern after the order is undone: 0xFFFF in BADC is
        // 0xFFFF; 0x8000 sent byte-swapped is 0x0080 on the wire.
        t.order = WordOrder::BADC;
        assert_eq!(
            decode_registers(&t, &[0x0080]).unwrap(),
            Decoded::NotAvailable
        );
        // 32-bit sentinel, word-swapped.
        let mut u = field(DataType::Uint32, WordOrder::CDAB);
        u.sentinels = vec![Sentinel::Raw(0xFFFF_FFFF)];
        assert_eq!(
            decode_registers(&u, &[0xFFFF, 0xFFFF]).unwrap(),
            Decoded::NotAvailable
        );
        // NaN sentinel on float32 (quiet NaN 0x7FC0_0000, byte-swapped: C07F 0000).
        let mut f = field(DataType::Float32, WordOrder::BADC);
        f.sentinels = vec![Sentinel::NaN];
        assert_eq!(
            decode_registers(&f, &[0xC07F, 0x0000]).unwrap(),
            Decoded::NotAvailable
        );
        // Without the sentinel a NaN is an error, never a stored value.
        f.sentinels.clear();
        assert!(matches!(
            decode_registers(&f, &[0xC07F, 0x0000]),
            Err(DecodeError::NotFinite { .. })
        ));
    }

    #[test]
    fn bits_in_a_register() {
        // Alarm word 0x0005: bits 0 and 2 set.
        let mut b = field(DataType::Bit, WordOrder::ABCD);
        for (bit, want) in [(0, 1.0), (1, 0.0), (2, 1.0), (15, 0.0)] {
            b.bit = Some(bit);
            assert_eq!(num(&b, &[0x0005]), want, "bit {bit}");
        }
        b.bit = Some(15);
        assert_eq!(num(&b, &[0x8000]), 1.0);
        // A little-endian controller (BADC) sends 0x0005 as 0x0500.
        b.order = WordOrder::BADC;
        b.bit = Some(2);
        assert_eq!(num(&b, &[0x0500]), 1.0);
        b.bit = Some(16);
        assert!(decode_registers(&b, &[0]).is_err());
    }

    #[test]
    fn strings() {
        // "PX3-5190R" in 8 registers, NUL padded: 'P' 'X' = 0x5058, ...
        let mut s = field(DataType::String, WordOrder::ABCD);
        s.length = 8;
        let words = [0x5058, 0x332D, 0x3531, 0x3930, 0x5200, 0, 0, 0];
        assert_eq!(
            decode_registers(&s, &words).unwrap(),
            Decoded::Text("PX3-5190R".into())
        );
        // Byte-swapped controllers put the first character in the low byte; the words
        // keep their order (DCBA behaves as BADC for text).
        for order in [WordOrder::BADC, WordOrder::DCBA] {
            s.order = order;
            let swapped: Vec<u16> = words.iter().map(|w| w.swap_bytes()).collect();
            assert_eq!(
                decode_registers(&s, &swapped).unwrap(),
                Decoded::Text("PX3-5190R".into())
            );
        }
        s.order = WordOrder::ABCD;
        assert!(matches!(
            decode_registers(&s, &[0xFFFE, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::NotText { .. })
        ));
    }

    #[test]
    fn short_and_misplaced_responses_are_errors() {
        assert!(matches!(
            decode_registers(&field(DataType::Float32, WordOrder::ABCD), &[0x4366]),
            Err(DecodeError::Short {
                need: 2,
                got: 1,
                ..
            })
        ));
        assert!(decode_registers(&field(DataType::Bool, WordOrder::ABCD), &[1]).is_err());
        let mut coil = field(DataType::Bool, WordOrder::ABCD);
        coil.table = Table::Coil;
        assert_eq!(decode_bits(&coil, &[true]).unwrap(), Decoded::Number(1.0));
        assert_eq!(
            decode_bits(&coil, &[false, true]).unwrap(),
            Decoded::Number(0.0)
        );
        assert!(decode_bits(&coil, &[]).is_err());
        assert!(decode_bits(&field(DataType::Uint16, WordOrder::ABCD), &[true]).is_err());
    }
}
