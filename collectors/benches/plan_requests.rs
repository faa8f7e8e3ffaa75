//! Requests per poll cycle for the park's profiles: the planner (gaps of up to 10
//! registers filled) against the exhaustive minimum under the same rules (an
//! independent dynamic programme over every split of every table's fields), and
//! against the baseline of one request per contiguous run of fields with no gap filling
//! (the default of Telegraf's Modbus input). Counted for a full read of every field and
//! over one hour of ticks (each field at its own poll interval), for every device of
//! the Qingdao park.
//!
//! `cargo bench -p tidewatch-collectors --bench plan_requests`; results are printed and
//! written to BENCHMARKS.md.

#[path = "../../fixtures/benches/report.rs"]
mod report;

use std::collections::BTreeMap;

use tidewatch_collectors::modbus::plan::{
    contiguous_run_requests, plan, PlanLimits, DEFAULT_MAX_GAP,
};
use tidewatch_devices::{Profile, ProfileSet, Site, Table};

/// Fewest requests for `due` under the limit and gap rule, by dynamic programme.
fn minimum(profile: &Profile, due: &[usize], limits: PlanLimits) -> usize {
    let mut by_table: BTreeMap<Table, Vec<(u32, u32)>> = BTreeMap::new();
    for &i in due {
        let f = &profile.fields[i];
        by_table
            .entry(f.table)
            .or_default()
            .push((u32::from(f.address), u32::from(f.end_address())));
    }
    let mut total = 0;
    for (table, mut spans) in by_table {
        spans.sort();
        // Overlapping spans (bits of one register) can only be read together.
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for s in spans {
            match merged.last_mut() {
                Some(l) if s.0 <= l.1 => l.1 = l.1.max(s.1),
                _ => merged.push(s),
            }
        }
        let limit = u32::from(limits.limit(table));
        let gap = u32::from(limits.max_gap);
        let n = merged.len();
        let mut best = vec![usize::MAX; n + 1];
        best[0] = 0;
        for j in 1..=n {
            for i in (1..=j).rev() {
                if merged[j - 1].1 - merged[i - 1].0 >= limit {
                    break;
                }
                if (i..j).any(|k| merged[k].0 - merged[k - 1].1 - 1 > gap) {
                    break;
                }
                if best[i - 1] != usize::MAX {
                    best[j] = best[j].min(best[i - 1] + 1);
                }
            }
        }
        total += best[n];
    }
    total
}

#[derive(Default)]
struct Counts {
    devices: usize,
    fields: usize,
    full: [usize; 3],
    hour: [usize; 3],
}

fn main() {
    let profiles = ProfileSet::builtin().expect("profiles");
    let site = Site::builtin(&profiles).expect("site");
    let mut rows: BTreeMap<String, Counts> = BTreeMap::new();
    for d in site.devices() {
        let p = profiles.get(&d.profile).expect("profile");
        let c = rows.entry(p.model.clone()).or_default();
        c.devices += 1;
        if c.devices > 1 {
            continue; // Same profile, same counts: computed once, multiplied below.
        }
        c.fields = p.fields.len();
        let limits = PlanLimits::for_profile(p, DEFAULT_MAX_GAP);
        let count = |due: &[usize]| {
            [
                plan(p, due, limits).expect("plan").len(),
                minimum(p, due, limits),
                contiguous_run_requests(p, due, limits).expect("plan"),
            ]
        };
        let all: Vec<usize> = (0..p.fields.len()).collect();
        c.full = count(&all);
        for t in 0..3600u64 {
            let due: Vec<usize> = p
                .fields
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    let iv = f.poll.as_secs().max(1);
                    t % iv == 0
                })
                .map(|(i, _)| i)
                .collect();
            if due.is_empty() {
                continue;
            }
            let k = count(&due);
            for (h, n) in c.hour.iter_mut().zip(k) {
                *h += n;
            }
        }
    }
    let mut body = String::from(
        "Every device of the Qingdao park (built-in site and profiles). *Full read*: every field of one device once; *per hour*: one device over an hour of ticks, each field at its profile's poll interval (fields due at the same tick planned together). Planner: gaps of up to 10 registers filled (`max_gap`, the default), at most 125 registers / 2000 bits per request or the profile's lower limit. Minimum: exhaustive dynamic programme under the same rules. Baseline: one request per contiguous run of fields, no gap filling (Telegraf's default).\n\n\
         | profile | devices | fields | full read: planner | minimum | baseline | per hour: planner | minimum | baseline | park per hour: planner | baseline |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let (mut park_plan, mut park_base, mut park_min) = (0, 0, 0);
    let mut all_minimal = true;
    for (model, c) in &rows {
        all_minimal &= c.full[0] == c.full[1] && c.hour[0] == c.hour[1];
        park_plan += c.hour[0] * c.devices;
        park_min += c.hour[1] * c.devices;
        park_base += c.hour[2] * c.devices;
        body.push_str(&format!(
            "| {model} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.devices,
            c.fields,
            c.full[0],
            c.full[1],
            c.full[2],
            c.hour[0],
            c.hour[1],
            c.hour[2],
            c.hour[0] * c.devices,
            c.hour[2] * c.devices
        ));
    }
    body.push_str(&format!(
        "\nWhole park, one hour: planner {park_plan} requests, minimum {park_min}, baseline {park_base} ({:.2}x the planner's). Planner equal to the minimum for every profile: {}.\n",
        park_base as f64 / park_plan as f64,
        if all_minimal { "yes" } else { "NO" }
    ));
    println!("{body}");
    assert!(all_minimal, "the planner is not minimal");
    report::write_section(
        "Collectors: Modbus requests per poll cycle",
        "cargo bench -p tidewatch-collectors --bench plan_requests",
        &body,
    );
}
