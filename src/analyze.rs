//! `tidewatch analyze`: the analytics job over a time range, from the command line.
//! It reads the configured store (or an embedded store directory such as the demo's),
//! works month by month with a progress line, prints the energy PUE report (or JSON),
//! and with `--write-back` writes the derived daily and monthly values back into the
//! store (a backfill of the derived series over history).

use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tidewatch_analytics::derived::{pue_points, DerivedPeriods};
use tidewatch_analytics::pue::{local_periods, Period, PeriodPue, PueReport, ScopePue};
use tidewatch_analytics::{energy_pue, AnalyticsConfig, Inventory};
use tidewatch_storage::embedded::EmbeddedConfig;
use tidewatch_storage::store::{Store, StoreConfig};

use crate::collect::CollectConfig;
use crate::time_arg;

const NS_PER_MS: i64 = 1_000_000;

/// What `analyze` was asked.
pub struct AnalyzeRequest {
    /// A tidewatch configuration file: its [store] and [analytics] tables.
    pub config: Option<PathBuf>,
    /// An embedded store directory, instead of a configuration file.
    pub store_dir: Option<PathBuf>,
    pub from: String,
    pub to: String,
    pub json: bool,
    pub write_back: bool,
}

pub async fn run(
    request: AnalyzeRequest,
    profiles: &tidewatch_devices::ProfileSet,
    site: &tidewatch_devices::Site,
) -> Result<()> {
    let (store_config, analytics) = match (&request.config, &request.store_dir) {
        (Some(_), Some(_)) => bail!("give --config or --store, not both"),
        (None, None) => bail!(
            "no store: give --config FILE (its [store] table) or --store DIR (an embedded \
             store directory, such as the demo's <data dir>/store)"
        ),
        (Some(path), None) => {
            // The collectors' file; their tables are not needed here, nor required.
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let config: CollectConfig =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            config
                .analytics
                .validate()
                .with_context(|| format!("{}: [analytics]", path.display()))?;
            (config.store, config.analytics)
        }
        (None, Some(dir)) => {
            if !dir.is_dir() {
                bail!("--store {}: no such directory", dir.display());
            }
            (
                StoreConfig::Embedded(EmbeddedConfig {
                    dir: dir.clone(),
                    ..EmbeddedConfig::default()
                }),
                AnalyticsConfig::default(),
            )
        }
    };
    let window = window(&request.from, &request.to)?;
    let inventory = Inventory::from_site(site, profiles).context("the site's meters")?;
    let store = Store::open(store_config)
        .await
        .context("opening the store (is a demo or collector using it? the embedded store takes one process at a time)")?;
    let result = analyze(&store, &inventory, &analytics, window, &request).await;
    let closed = store.shutdown().await.context("closing the store");
    let report = result?;
    closed?;
    if request.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, inventory.utc_offset_hours));
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

/// Month by month (progress), derived values written back if asked, then the report
/// over the whole window.
async fn analyze(
    store: &Store,
    inventory: &Inventory,
    config: &AnalyticsConfig,
    window: Range<i64>,
    request: &AnalyzeRequest,
) -> Result<PueReport> {
    let offset_ns = i64::from(inventory.utc_offset_hours) * 3_600_000_000_000;
    let months = local_periods(&window, offset_ns, Period::Month);
    let mut progress = Progress::new(months.len() + 1);
    let mut written = 0;
    for (label, month) in &months {
        progress.step(&format!("month {label}"));
        let report = energy_pue(store, inventory, config, month.clone())
            .await
            .with_context(|| format!("month {label}"))?;
        if request.write_back {
            let points = pue_points(
                &report,
                &DerivedPeriods::Calendar,
                inventory.utc_offset_hours,
            );
            written += store
                .write(points)
                .await
                .with_context(|| format!("writing the derived values of {label}"))?
                .points;
        }
    }
    progress.step("the whole range");
    let report = energy_pue(store, inventory, config, window).await?;
    progress.done();
    if request.write_back {
        eprintln!("wrote {written} derived points (whole local days and months) into the store");
    }
    Ok(report)
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
    if report.park.daily.len() <= 31 {
        trend(&mut out, "daily PUE", &|s| &s.daily);
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
