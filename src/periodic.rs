//! The periodic analytics job as the long-running commands run it (`tidewatch run`,
//! and `tidewatch demo`): started over the store the collectors write, with the
//! `[analytics]` settings of the configuration, and each run summed up in a few
//! lines for the terminal or the service's log.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tidewatch_analytics::job::{JobRun, PeriodicJob};
use tidewatch_analytics::{AnalyticsConfig, Subjects};
use tidewatch_devices::{ProfileSet, Site};
use tidewatch_storage::store::Store;

/// The latest runs, as the job publishes them.
pub type Runs = tokio::sync::watch::Receiver<Option<Arc<JobRun>>>;

/// Starts the job over `store` for the meters and loops of `site`, on the schedule of
/// `config.job`, its first run `first_after` from now.
pub fn start(
    store: Store,
    site: &Site,
    profiles: &ProfileSet,
    config: AnalyticsConfig,
    first_after: Duration,
) -> Result<PeriodicJob> {
    let subjects = Subjects::from_site(site, profiles).context("the site's meters and loops")?;
    let schedule = tidewatch_analytics::job::Schedule {
        first_after,
        ..config.job.schedule()
    };
    Ok(PeriodicJob::start(
        store,
        subjects,
        config,
        schedule,
        wall_clock_ns,
    ))
}

/// The next analytics run, once the job is started (pending until then, and after
/// the job stopped).
pub async fn next_run(latest: &mut Option<Runs>) -> Option<Arc<JobRun>> {
    match latest {
        Some(rx) => match rx.changed().await {
            Ok(()) => rx.borrow_and_update().clone(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Now, Unix ns.
pub fn wall_clock_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A few lines per analytics run: PUE per scope over the trailing `window` (its
/// label, e.g. `24h`), then cost, cooling and the anomalies open at the window's end.
pub fn analytics_line(run: &JobRun, window: &str) -> String {
    let analysis = match &run.report {
        Ok(analysis) => analysis,
        Err(error) => return format!("analytics: no report this run: {error}"),
    };
    let report = &analysis.pue;
    let scopes: Vec<String> = report
        .centres
        .iter()
        .chain([&report.park])
        .map(|s| {
            let name = if std::ptr::eq(s, &report.park) {
                "park"
            } else {
                &s.scope
            };
            match s.total.pue {
                Some(pue) => format!("{name} {pue:.3}"),
                None => format!("{name} -"),
            }
        })
        .collect();
    let mut out = format!(
        "analytics: energy PUE, last {window}: {} (coverage {:.0} %, category {}); {} derived points stored ({:.1} s)",
        scopes.join(", "),
        report.park.total.coverage * 100.0,
        report.category.number(),
        run.written,
        run.took.as_secs_f64()
    );
    if let Some(cost) = analysis.cost.result() {
        out.push_str(&format!(
            "\n  cost, last {window}: park {:.0} CNY for {:.0} kWh (coverage {:.0} %)",
            cost.park.cost_cny,
            cost.park.kwh,
            cost.park.coverage * 100.0
        ));
    }
    if let Some(cooling) = analysis.cooling.result() {
        let captures: Vec<String> = cooling
            .loops
            .iter()
            .filter_map(|l| Some(format!("{} {:.2}", l.zone, l.capture.total.ratio?)))
            .collect();
        out.push_str(&format!(
            "\n  heat capture ratio, last {window}: {}",
            if captures.is_empty() {
                "-".to_owned()
            } else {
                captures.join(", ")
            }
        ));
    }
    if let Some(found) = analysis.anomalies.result() {
        let open: Vec<&tidewatch_analytics::anomaly::Anomaly> =
            found.iter().filter(|a| a.is_ongoing()).collect();
        out.push_str(&format!(
            "\n  thermal anomalies, last {window}: {} found, {} open",
            found.len(),
            open.len()
        ));
        for a in open.iter().take(5) {
            out.push_str(&format!(
                "\n    {} {}: {}",
                a.kind.as_str(),
                a.device,
                a.message_en
            ));
        }
    }
    for (part, error) in analysis.failures() {
        out.push_str(&format!("\n  {part}: failed: {error}"));
    }
    out
}
