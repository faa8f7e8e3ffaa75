//! `tidewatch analyze`: the analytics job over a time range, from the command line.
//! It reads the configured store (or an embedded store directory such as the demo's),
//! works month by month with a progress line (the report of a longer window composed
//! from the months'), prints the report (energy PUE, demand, cost, carbon, cooling per
//! loop, thermal anomalies; or JSON), and with `--write-back`
//! writes the derived values back into the store (a backfill of the derived series
//! over history). A part that fails is reported with its error and makes the command
//! exit non-zero, after the rest of the report.

use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tidewatch_analytics::anomaly::Anomaly;
use tidewatch_analytics::derived::{analysis_points, DerivedPeriods};
use tidewatch_analytics::pue::{local_periods, Period, PeriodPue, PueReport, ScopePue};
use tidewatch_analytics::{
    analyze_range, compose_months, Analysis, AnalyticsConfig, Part, Subjects,
};
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

use crate::collect::CollectConfig;
use crate::time_arg;

const NS_PER_MS: i64 = 1_000_000;
/// The text report prints daily PUE up to this many days (a month); --json has them all.
const MAX_DAILY_LINES: usize = 31;

/// What `analyze` was asked.
pub struct AnalyzeRequest {
    /// A tidewatch configuration file: its [store] and [analytics] tables.
    pub config: Option<PathBuf>,
    /// An embedded store directory: instead of the configuration's [store].
    pub store_dir: Option<PathBuf>,
    pub from: String,
    pub to: String,
    pub json: bool,
    pub write_back: bool,
    pub lang: Lang,
}

/// The language of the anomaly sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// English.
    En,
    /// Chinese.
    Zh,
}

pub async fn run(
    request: AnalyzeRequest,
    profiles: &tidewatch_devices::ProfileSet,
    site: &tidewatch_devices::Site,
) -> Result<()> {
    // The [analytics] table (and [store], unless --store names the directory) of the
    // configuration file; the collectors' tables in it are not needed here, nor required.
    let from_file = match &request.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let config: CollectConfig =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            config
                .analytics
                .validate()
                .with_context(|| format!("{}: [analytics]", path.display()))?;
            Some((config.store, config.analytics))
        }
        None => None,
    };
    let (store_config, analytics) = match (from_file, &request.store_dir) {
        (None, None) => bail!(
            "no store: give --config FILE (its [store] table) or --store DIR (an embedded \
             store directory, such as the demo's <data dir>/store)"
        ),
        (Some(from_file), None) => from_file,
        (from_file, Some(dir)) => {
            if !dir.is_dir() {
                bail!("--store {}: no such directory", dir.display());
            }
            (
                StoreConfig::Embedded(EmbeddedConfig {
                    dir: dir.clone(),
                    ..EmbeddedConfig::default()
                }),
                from_file
                    .map(|(_, analytics)| analytics)
                    .unwrap_or_default(),
            )
        }
    };
    let window = window(&request.from, &request.to)?;
    let subjects = Subjects::from_site(site, profiles).context("the site's meters and loops")?;
    let store = Store::open(store_config)
        .await
        .context("opening the store (is a demo or collector using it? the embedded store takes one process at a time)")?;
    let result = analyze(&store, &subjects, &analytics, window, &request).await;
    let closed = store.shutdown().await.context("closing the store");
    let analysis = result?;
    closed?;
    if request.json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        let offset = subjects.inventory.utc_offset_hours;
        print!("{}", render(&analysis.pue, offset));
        print!("{}", render_parts(&analysis, offset, request.lang));
    }
    let failures = analysis.failures();
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|(name, _)| *name).collect();
        bail!(
            "{} part(s) of the analysis failed: {} (the errors are in the report)",
            failures.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// `--from` and `--to` as Unix ns; `--to now` is the present.
fn window(from: &str, to: &str) -> Result<Range<i64>> {
    let from_ms = time_arg::parse_time(from).with_context(|| format!("--from {from:?}"))?;
    let to_ms = if to.trim() == "now" {
        chrono::Utc::now().timestamp_millis()
    } else {
        time_arg::parse_end(to, from_ms).with_context(|| format!("--to {to:?}"))?
    };
    if to_ms <= from_ms {
        bail!("--to must be after --from");
    }
    Ok(from_ms * NS_PER_MS..to_ms * NS_PER_MS)
}

/// Month by month (progress), derived values written back if asked; the analysis of
/// the whole window is composed from the months' (exactly: see
/// [`tidewatch_analytics::compose`]), so that only one month's telemetry is ever in
/// memory, however long the window.
async fn analyze(
    store: &Store,
    subjects: &Subjects,
    config: &AnalyticsConfig,
    window: Range<i64>,
    request: &AnalyzeRequest,
) -> Result<Analysis> {
    let offset_hours = subjects.inventory.utc_offset_hours;
    let offset_ns = i64::from(offset_hours) * 3_600_000_000_000;
    let months = local_periods(&window, offset_ns, Period::Month);
    let mut progress = Progress::new(months.len());
    let mut written = 0;
    let mut analyses = Vec::with_capacity(months.len());
    for (label, month) in &months {
        progress.step(&format!("month {label}"));
        let analysis = analyze_range(store, subjects, config, month.clone())
            .await
            .with_context(|| format!("month {label}"))?;
        if request.write_back {
            let points = analysis_points(&analysis, &DerivedPeriods::Calendar, offset_hours);
            written += store
                .write(points)
                .await
                .with_context(|| format!("writing the derived values of {label}"))?
                .points;
        }
        analyses.push(analysis);
    }
    progress.done();
    if request.write_back {
        eprintln!(
            "wrote {written} derived points (whole local days and months, hourly heat capture, anomaly events) into the store"
        );
    }
    compose_months(analyses, config).context("the window holds no month")
}

/// A progress line on standard error: redrawn in place on a terminal, one line per
/// step otherwise (logs, CI).
struct Progress {
    total: usize,
    done: usize,
    terminal: bool,
    started: std::time::Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
        }
    }

    fn step(&mut self, what: &str) {
        const WIDTH: usize = 24;
        let filled = WIDTH * self.done / self.total.max(1);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
        let line = format!(
            "[{bar}] {}/{} {what} ({:.1} s)",
            self.done + 1,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        self.done += 1;
    }

    fn done(&self) {
        if self.terminal {
            eprintln!(
                "\r\x1b[2K[{}] {} steps in {:.1} s",
                "#".repeat(24),
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

fn local_time(ns: i64, offset_hours: i32) -> String {
    let local =
        chrono::DateTime::from_timestamp_nanos(ns + i64::from(offset_hours) * 3_600_000_000_000);
    local.format("%Y-%m-%d %H:%M").to_string()
}

fn number(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// The report as text for a terminal.
pub fn render(report: &PueReport, offset_hours: i32) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Energy PUE of {} (park), {} .. {} (UTC{offset_hours:+}), {}",
        report.park.scope,
        local_time(report.window_ns.0, offset_hours),
        local_time(report.window_ns.1, offset_hours),
        report.category_text
    );
    let _ = writeln!(
        out,
        "\n{:<10} {:>7} {:>9} {:>14} {:>12} {:>6} {:>6}  grade / targets",
        "scope", "PUE", "coverage", "facility kWh", "IT kWh", "CLF", "PLF"
    );
    let scopes: Vec<&ScopePue> = report.centres.iter().chain([&report.park]).collect();
    // The park's row says "park" (its id is in the title); centres keep their ids.
    let name = |s: &ScopePue| -> String {
        if std::ptr::eq(s, &report.park) {
            "park".to_owned()
        } else {
            s.scope.clone()
        }
    };
    for s in &scopes {
        let limits: Vec<String> = s
            .limits
            .iter()
            .map(|l| format!("{} {}", l.name, if l.met { "met" } else { "NOT met" }))
            .collect();
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>8.1}% {:>14.0} {:>12.0} {:>6} {:>6}  {}{}",
            name(s),
            number(s.total.pue, 3),
            s.total.coverage * 100.0,
            s.total.facility_kwh,
            s.total.it_kwh,
            number(s.split.clf, 3),
            number(s.split.plf, 3),
            s.grade.as_deref().unwrap_or("no grade"),
            if limits.is_empty() {
                String::new()
            } else {
                format!("; {}", limits.join(", "))
            }
        );
    }
    let trend = |out: &mut String, title: &str, rows: &dyn Fn(&ScopePue) -> &Vec<PeriodPue>| {
        let _ = writeln!(
            out,
            "\n{title} (a trend; the reference period of PUE is a year)"
        );
        for s in &scopes {
            let cells: Vec<String> = rows(s)
                .iter()
                .map(|p| format!("{} {}", p.label, number(p.pue, 3)))
                .collect();
            let _ = writeln!(out, "  {:<10} {}", name(s), cells.join("  "));
        }
    };
    trend(&mut out, "monthly PUE", &|s| &s.monthly);
    // A line per day stays readable up to a month; beyond, say where the days are.
    if report.park.daily.len() <= MAX_DAILY_LINES {
        trend(&mut out, "daily PUE", &|s| &s.daily);
    } else {
        let _ = writeln!(
            out,
            "\ndaily PUE: {} days, more than the {MAX_DAILY_LINES} printed here; --json has every day",
            report.park.daily.len()
        );
    }
    let modules: Vec<String> = report
        .centres
        .iter()
        .flat_map(|c| {
            c.modules.iter().map(|m| {
                format!(
                    "  {:<10} {:<8} pPUE {:>6} (coverage {:.1} %)",
                    c.scope,
                    m.zone,
                    number(m.ppue, 3),
                    m.coverage * 100.0
                )
            })
        })
        .collect();
    if !modules.is_empty() {
        let _ = writeln!(out, "\nmicro-modules\n{}", modules.join("\n"));
    }
    out
}

/// One section of the report: its title, then its lines, or why the part has none.
fn section<T>(out: &mut String, title: &str, part: &Part<T>, lines: impl FnOnce(&mut String, &T)) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "\n{title}");
    match part {
        Part::Computed { result } => lines(out, result),
        Part::NotConfigured { reason } => {
            let _ = writeln!(out, "  not configured: {reason}");
        }
        Part::Failed { error } => {
            let _ = writeln!(out, "  FAILED: {error}");
        }
    }
}

/// Demand, cost, carbon, cooling and anomalies as text for a terminal.
pub fn render_parts(analysis: &Analysis, offset_hours: i32, lang: Lang) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let park = &analysis.pue.park.scope;
    let scope_name = |scope: &str| {
        if scope == park {
            "park".to_owned()
        } else {
            scope.to_owned()
        }
    };

    section(
        &mut out,
        "peak demand and instantaneous PUE (category 0)",
        &analysis.demand,
        |out, d| {
            for (p, i) in d
                .centres
                .iter()
                .chain([&d.park])
                .zip(d.instant_centres.iter().chain([&d.instant_park]))
            {
                let peak = match (p.peak_kw, &p.peak_local) {
                    (Some(kw), Some(at)) => format!("{kw:.0} kW at {at}"),
                    _ => format!("- ({})", p.reason.as_deref().unwrap_or("not measured")),
                };
                let instant = match i.pue_at_peak {
                    Some(pue) => format!(
                        "PUE {pue:.3} at peak IT (range {} .. {})",
                        number(i.min_pue, 3),
                        number(i.max_pue, 3)
                    ),
                    None => format!("PUE - ({})", i.reason.as_deref().unwrap_or("not measured")),
                };
                let _ = writeln!(
                    out,
                    "  {:<10} peak {peak} (coverage {:.1} %); {instant}",
                    scope_name(&p.scope),
                    p.coverage * 100.0
                );
            }
        },
    );

    section(
        &mut out,
        "cost by time-of-use period",
        &analysis.cost,
        |out, c| {
            for s in c.centres.iter().chain([&c.park]) {
                let periods: Vec<String> = s
                    .periods
                    .iter()
                    .filter(|p| p.kwh > 0.0)
                    .map(|p| format!("{} {:.0}", p.period.name(), p.cost_cny))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {:<10} {:>12.0} {} for {:.0} kWh, {} {}/kWh (coverage {:.1} %): {}",
                    scope_name(&s.scope),
                    s.cost_cny,
                    c.currency,
                    s.kwh,
                    number(s.average_price_cny_per_kwh, 3),
                    c.currency,
                    s.coverage * 100.0,
                    periods.join(", ")
                );
            }
        },
    );

    section(&mut out, "carbon and water", &analysis.carbon, |out, c| {
        for s in c.centres.iter().chain([&c.park]) {
            let wue = match s.wue.wue_l_per_kwh {
                Some(w) => format!("WUE {w:.3} L/kWh"),
                None => format!("WUE - ({})", s.wue.reason.as_deref().unwrap_or("-")),
            };
            let _ = writeln!(
                out,
                "  {:<10} CO2 {:.1} t, CUE {} kg/kWh, {wue} (coverage {:.1} %)",
                scope_name(&s.scope),
                s.co2_kg / 1000.0,
                number(s.cue_kg_per_kwh, 3),
                s.coverage * 100.0
            );
        }
    });

    section(
        &mut out,
        "liquid cooling per loop",
        &analysis.cooling,
        |out, c| {
            for l in &c.loops {
                let _ = writeln!(
                out,
                "  {:<10} {:<6} heat {} kWh (mean {} kW), capture {}, approach {} K ({} K/day), dew-point margin min {} K, primary supply max {} C ({} limit {:.0} C)",
                l.centre,
                l.zone,
                number(l.heat.energy_kwh, 0),
                number(l.heat.mean_kw, 1),
                number(l.capture.total.ratio, 3),
                number(l.approach.mean_k, 2),
                number(l.approach.slope_k_per_day, 3),
                number(l.dew_point.min_margin_k, 1),
                number(l.class_limit.max_supply_c, 1),
                l.class_limit.class,
                l.class_limit.limit_c
            );
            }
        },
    );

    section(
        &mut out,
        "thermal anomalies",
        &analysis.anomalies,
        |out, found| {
            if found.is_empty() {
                let _ = writeln!(out, "  none");
            }
            for a in found {
                let _ = writeln!(out, "  {}", anomaly_line(a, offset_hours, lang));
            }
        },
    );
    out
}

fn anomaly_line(a: &Anomaly, offset_hours: i32, lang: Lang) -> String {
    let until = a
        .end_ns
        .map_or_else(|| "ongoing".to_owned(), |end| local_time(end, offset_hours));
    let severity = a.severity.as_str();
    let message = match lang {
        Lang::En => &a.message_en,
        Lang::Zh => &a.message_zh,
    };
    format!(
        "{} .. {until}  {severity:<8} {} {}: {message}",
        local_time(a.start_ns, offset_hours),
        a.kind.as_str(),
        a.device
    )
}
