//! The request planner: which read requests fetch the fields due at one poll tick.
//!
//! Fields of one table are merged into as few requests as possible. Two neighbouring
//! fields may share a request when the registers between them (the *gap*) number at
//! most `max_gap` (the gap is read and thrown away), and a request never spans more
//! than the table's limit: 125 registers or 2000 bits (Modbus application protocol
//! 6.1-6.4), or the device's own lower limit from its profile. A field is never split
//! across requests. `max_gap = 0` merges only fields that touch, which is Telegraf's
//! default behaviour ("one request per contiguous run of fields").
//!
//! Greedy is optimal here: sort the fields by address, then let each request take
//! fields from the left for as long as the next one still fits the limit and the gap
//! rule. A set of consecutive fields that fits stays fitting when fields are removed
//! from either end, so any plan can be turned, request by request, into the greedy one
//! without adding requests (the usual exchange argument). The unit tests check this
//! against an exhaustive dynamic programme on random layouts.

use std::collections::BTreeMap;

use tidewatch_devices::{Field, Profile, Table};

/// Most registers one read of holding or input registers may ask for (function codes 3
/// and 4, Modbus application protocol 6.3 and 6.4).
pub const MODBUS_MAX_REGISTERS: u16 = 125;
/// Most bits one read of coils or discrete inputs may ask for (function codes 1 and 2).
pub const MODBUS_MAX_BITS: u16 = 2000;
/// Default largest gap, in registers (or bits), read and discarded to merge two
/// requests into one.
pub const DEFAULT_MAX_GAP: u16 = 10;

/// One read request of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub table: Table,
    /// First wire address read.
    pub address: u16,
    /// Registers (or bits) read.
    pub count: u16,
    /// The fields this request carries, as indices into the profile's `fields`, in
    /// address order.
    pub fields: Vec<usize>,
}

impl ReadRequest {
    /// The Modbus function code of this request (1, 2, 3 or 4: reads only).
    pub fn function_code(&self) -> u8 {
        self.table.read_function_code()
    }
}

/// The limits a plan respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Most registers per request (holding and input registers).
    pub max_registers: u16,
    /// Most bits per request (coils and discrete inputs).
    pub max_bits: u16,
    /// Largest gap filled to merge fields into one request (0: never fill gaps).
    pub max_gap: u16,
}

impl PlanLimits {
    /// The Modbus limits, lowered to the profile's own, with `max_gap`.
    pub fn for_profile(profile: &Profile, max_gap: u16) -> PlanLimits {
        PlanLimits {
            max_registers: MODBUS_MAX_REGISTERS.min(profile.max_registers_per_request),
            max_bits: MODBUS_MAX_BITS.min(profile.max_bits_per_request),
            max_gap,
        }
    }

    /// The largest request span for a table.
    pub fn limit(&self, table: Table) -> u16 {
        if table.is_bits() {
            self.max_bits
        } else {
            self.max_registers
        }
    }
}

/// A plan that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "field \"{field}\" is {width} {unit} wide, more than the {limit} one request may read"
    )]
    FieldTooWide {
        field: String,
        width: u32,
        limit: u16,
        unit: &'static str,
    },
    #[error("field index {0} is not in the profile")]
    NoSuchField(usize),
    #[error("a request limit of 0 cannot read anything")]
    ZeroLimit,
}

/// The requests that read `due` (indices into `profile.fields`), fewest possible under
/// `limits`; ordered by table (coils, discrete inputs, holding, input) then address.
pub fn plan(
    profile: &Profile,
    due: &[usize],
    limits: PlanLimits,
) -> Result<Vec<ReadRequest>, PlanError> {
    let mut by_table: BTreeMap<Table, Vec<Span>> = BTreeMap::new();
    for &i in due {
        let f: &Field = profile.fields.get(i).ok_or(PlanError::NoSuchField(i))?;
        let start = u32::from(f.address);
        let end = start + u32::from(f.width().max(1)) - 1;
        by_table.entry(f.table).or_default().push(Span {
            start,
            end,
            fields: vec![i],
        });
        let limit = limits.limit(f.table);
        if end - start + 1 > u32::from(limit) {
            return Err(PlanError::FieldTooWide {
                field: f.name.clone(),
                width: end - start + 1,
                limit,
                unit: if f.table.is_bits() {
                    "bits"
                } else {
                    "registers"
                },
            });
        }
    }
    let mut out = Vec::new();
    for (table, spans) in by_table {
        let limit = limits.limit(table);
        if limit == 0 {
            return Err(PlanError::ZeroLimit);
        }
        for block in greedy(merge_overlapping(spans), u32::from(limit), limits.max_gap) {
            // Spans lie inside 0..=65535 (u16 addresses) and within `limit`, so both fit.
            out.push(ReadRequest {
                table,
                address: u16::try_from(block.start).unwrap_or(u16::MAX),
                count: u16::try_from(block.end - block.start + 1).unwrap_or(u16::MAX),
                fields: block.fields,
            });
        }
    }
    Ok(out)
}

/// The number of requests of [`plan`] with `max_gap = 0`: one request per run of
/// touching fields (split only at the size limit). This is what Telegraf's Modbus input
/// sends by default, the baseline of the planner benchmark.
pub fn contiguous_run_requests(
    profile: &Profile,
    due: &[usize],
    limits: PlanLimits,
) -> Result<usize, PlanError> {
    plan(
        profile,
        due,
        PlanLimits {
            max_gap: 0,
            ..limits
        },
    )
    .map(|p| p.len())
}

/// An address range `start..=end` and the fields it carries.
#[derive(Debug, Clone)]
struct Span {
    start: u32,
    end: u32,
    fields: Vec<usize>,
}

/// Sort spans and merge the ones that overlap (bit fields sharing a register): they can
/// only be read together.
fn merge_overlapping(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => {
                last.end = last.end.max(s.end);
                last.fields.extend(s.fields);
            }
            _ => out.push(s),
        }
    }
    out
}

/// Greedy packing of sorted, disjoint spans.
fn greedy(spans: Vec<Span>, limit: u32, max_gap: u16) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(cur)
                if s.start - cur.end - 1 <= u32::from(max_gap) && s.end - cur.start < limit =>
            {
                cur.end = s.end;
                cur.fields.extend(s.fields);
            }
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_devices::ProfileSet;

    /// A small deterministic generator (xorshift64*): random layouts without a
    /// dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Exhaustive minimum: the fewest requests covering sorted disjoint spans, each
    /// request a run of consecutive spans that fits the limit and whose inner gaps are
    /// all at most `max_gap` (dynamic programme over every split point).
    fn minimum(spans: &[(u32, u32)], limit: u32, max_gap: u32) -> Option<usize> {
        let n = spans.len();
        let mut best = vec![usize::MAX; n + 1];
        best[0] = 0;
        for j in 1..=n {
            for i in 1..=j {
                // Request covering spans i-1 ..= j-1.
                let (first, last) = (spans[i - 1], spans[j - 1]);
                let fits = last.1 - first.0 < limit
                    && (i..j).all(|k| spans[k].0 - spans[k - 1].1 - 1 <= max_gap);
                if fits && best[i - 1] != usize::MAX {
                    best[j] = best[j].min(best[i - 1] + 1);
                }
            }
        }
        (best[n] != usize::MAX).then_some(best[n])
    }

    fn profile_with(fields: &[(Table, u16, u16)], max_registers: u16) -> Profile {
        let mut p = ProfileSet::builtin()
            .unwrap()
            .get("lc-cdu")
            .unwrap()
            .clone();
        p.max_registers_per_request = max_registers;
        let template = p.fields[0].clone();
        p.fields = fields
            .iter()
            .enumerate()
            .map(|(i, &(table, address, width))| {
                let mut f = template.clone();
                f.name = format!("f{i}");
                f.table = table;
                f.address = address;
                f.data_type = tidewatch_devices::DataType::String;
                f.length = width;
                if table.is_bits() {
                    f.data_type = tidewatch_devices::DataType::Bool;
                }
                f
            })
            .collect();
        p
    }

    fn check_plan(p: &Profile, due: &[usize], limits: PlanLimits, requests: &[ReadRequest]) {
        // Every due field in exactly one request, whole, within the limit.
        let mut seen = vec![0; p.fields.len()];
        for r in requests {
            assert!(r.count >= 1 && r.count <= limits.limit(r.table), "{r:?}");
            for &i in &r.fields {
                let f = &p.fields[i];
                seen[i] += 1;
                assert_eq!(f.table, r.table);
                assert!(f.address >= r.address, "{r:?} {f:?}");
                assert!(
                    u32::from(f.end_address()) < u32::from(r.address) + u32::from(r.count),
                    "{r:?}"
                );
            }
        }
        for &i in due {
            assert_eq!(seen[i], 1, "field {i} read {} times", seen[i]);
        }
    }

    #[test]
    fn planner_count_is_the_minimum_on_random_layouts() {
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        for case in 0..3000 {
            let limit = [1u16, 2, 4, 7, 10, 16, 60, 125][rng.below(8) as usize];
            let max_gap = [0u16, 1, 2, 3, 5, 10][rng.below(6) as usize];
            let n = 1 + rng.below(14) as usize;
            let mut fields = Vec::new();
            let mut addr: u32 = rng.below(50) as u32;
            for _ in 0..n {
                let width = 1 + rng.below(u64::from(limit.min(8))) as u16;
                if addr + u32::from(width) > 65536 {
                    break;
                }
                fields.push((Table::Holding, addr as u16, width));
                // Touching, small gaps, or big gaps.
                let gap = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(4) as u32,
                    2 => rng.below(15) as u32,
                    _ => rng.below(200) as u32,
                };
                addr += u32::from(width) + gap;
            }
            let p = profile_with(&fields, limit);
            // Due: a random subset (each field with probability 3/4), shuffled order.
            let mut due: Vec<usize> = (0..fields.len()).filter(|_| rng.below(4) != 0).collect();
            due.reverse();
            let limits = PlanLimits::for_profile(&p, max_gap);
            let requests = plan(&p, &due, limits).unwrap();
            check_plan(&p, &due, limits, &requests);
            let mut spans: Vec<(u32, u32)> = due
                .iter()
                .map(|&i| {
                    let f = &p.fields[i];
                    (u32::from(f.address), u32::from(f.end_address()))
                })
                .collect();
            spans.sort();
            let min = minimum(&spans, u32::from(limit), u32::from(max_gap)).unwrap_or(0);
            assert_eq!(
                requests.len(),
                min,
                "case {case}: limit {limit}, gap {max_gap}, spans {spans:?}, plan {requests:?}"
            );
            // The contiguous-run count is the same minimum with no gap filling, and never
            // below the planner's.
            let runs = contiguous_run_requests(&p, &due, limits).unwrap();
            assert_eq!(
                runs,
                minimum(&spans, u32::from(limit), 0).unwrap_or(0),
                "case {case}"
            );
            assert!(runs >= requests.len());
        }
    }

    #[test]
    fn gap_rule_and_limits() {
        // Three fields: 0..=1, 5..=6 (gap 3), 20 (gap 13).
        let p = profile_with(
            &[
                (Table::Holding, 0, 2),
                (Table::Holding, 5, 2),
                (Table::Holding, 20, 1),
            ],
            125,
        );
        let all = [0, 1, 2];
        let count = |gap| plan(&p, &all, PlanLimits::for_profile(&p, gap)).unwrap();
        assert_eq!(count(0).len(), 3);
        assert_eq!(count(2).len(), 3);
        let r = count(3);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].address, r[0].count, r[0].fields.clone()),
            (0, 7, vec![0, 1])
        );
        assert_eq!(count(13).len(), 1);
        assert_eq!(count(13)[0].count, 21);
        // A device limit of 6 registers keeps 0..=1 and 5..=6 apart (7 registers).
        let small = profile_with(&[(Table::Holding, 0, 2), (Table::Holding, 5, 2)], 6);
        assert_eq!(
            plan(&small, &[0, 1], PlanLimits::for_profile(&small, 10))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn tables_never_mix_and_bits_use_the_bit_limit() {
        let p = profile_with(
            &[
                (Table::Holding, 0, 1),
                (Table::Input, 1, 1),
                (Table::Coil, 0, 1),
                (Table::Coil, 1999, 1),
                (Table::DiscreteInput, 5, 1),
            ],
            125,
        );
        let r = plan(&p, &[0, 1, 2, 3, 4], PlanLimits::for_profile(&p, 10)).unwrap();
        let summary: Vec<(u8, u16, u16)> = r
            .iter()
            .map(|r| (r.function_code(), r.address, r.count))
            .collect();
        // Coils 0 and 1999 are 2000 bits apart end to end, but the gap (1998) is too big.
        assert_eq!(
            summary,
            vec![(1, 0, 1), (1, 1999, 1), (2, 5, 1), (3, 0, 1), (4, 1, 1)]
        );
        let r = plan(
            &p,
            &[2, 3],
            PlanLimits {
                max_gap: 2000,
                ..PlanLimits::for_profile(&p, 0)
            },
        )
        .unwrap();
        assert_eq!((r.len(), r[0].count), (1, 2000));
    }

    #[test]
    fn bit_fields_in_one_register_share_a_request() {
        let profiles = ProfileSet::builtin().unwrap();
        let cdu = profiles.get("lc-cdu").unwrap();
        let due: Vec<usize> = cdu
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name.ends_with("_alarm") && f.table == Table::Holding)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(due.len(), 3);
        let r = plan(cdu, &due, PlanLimits::for_profile(cdu, 0)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].address, r[0].count, r[0].fields.len()), (1, 1, 3));
    }

    #[test]
    fn too_wide_and_unknown_fields_are_errors() {
        let p = profile_with(&[(Table::Holding, 0, 8)], 4);
        assert!(matches!(
            plan(&p, &[0], PlanLimits::for_profile(&p, 0)),
            Err(PlanError::FieldTooWide {
                width: 8,
                limit: 4,
                ..
            })
        ));
        assert_eq!(
            plan(&p, &[7], PlanLimits::for_profile(&p, 0)),
            Err(PlanError::NoSuchField(7))
        );
    }

    #[test]
    fn builtin_profiles_read_all_fields_in_few_requests() {
        let profiles = ProfileSet::builtin().unwrap();
        for p in profiles.iter() {
            let all: Vec<usize> = (0..p.fields.len()).collect();
            let limits = PlanLimits::for_profile(p, DEFAULT_MAX_GAP);
            let r = plan(p, &all, limits).unwrap();
            check_plan(p, &all, limits, &r);
            assert!(r.len() <= contiguous_run_requests(p, &all, limits).unwrap());
        }
        // The in-row unit's 22 holding registers in one request, its coil, its input.
        let acu = profiles.get("inrow-acu").unwrap();
        let all: Vec<usize> = (0..acu.fields.len()).collect();
        assert_eq!(
            plan(acu, &all, PlanLimits::for_profile(acu, 10))
                .unwrap()
                .len(),
            3
        );
    }
}
