//! The periodic analytics job: inside a long-running process (`tidewatch run`, the
//! service, and `tidewatch demo`), every `every` it analyses the trailing `window`
//! ([`crate::analysis`]: energy PUE, demand, cost, carbon, cooling, thermal anomalies),
//! writes the results back to the store as derived measurements ([`crate::derived`],
//! `period` tag = the window's label) and publishes them in process (a
//! `tokio::sync::watch` channel: the alert engine and the dashboards subscribe and
//! always see the latest result).
//!
//! Anomaly events (`thermal_anomaly`, `open` and `close`) are written once: the windows
//! of consecutive runs overlap, so the job remembers the events it wrote while they are
//! inside the window.
//!
//! A failed run (the store unreadable, a meter without data) is published as an error
//! and logged; the job carries on at the next tick. Runs never overlap: a run that
//! takes longer than `every` delays the next tick.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tidewatch_storage::store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use tidewatch_model::Point;

use crate::analysis::{analyze_range, Analysis, Subjects};
use crate::config::AnalyticsConfig;
use crate::derived::{analysis_points, DerivedPeriods, THERMAL_ANOMALY};

/// When and over what the job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Time between two runs.
    pub every: Duration,
    /// The trailing window each run covers, ending at the run's time.
    pub window: Duration,
    /// The first run, this long after the start (let the collectors fill the store).
    pub first_after: Duration,
}

impl Default for Schedule {
    /// Every minute over the last 24 hours, the first run after 10 s.
    fn default() -> Self {
        Schedule {
            every: Duration::from_secs(60),
            window: Duration::from_secs(24 * 3600),
            first_after: Duration::from_secs(10),
        }
    }
}

impl Schedule {
    /// The window as the `period` tag of the derived points: `24h`, `90m`, `45s`.
    pub fn label(&self) -> String {
        let s = self.window.as_secs();
        if s % 3600 == 0 {
            format!("{}h", s / 3600)
        } else if s % 60 == 0 {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }
}

/// The `[analytics.job]` table: the periodic job's cadence and window (the first run
/// comes 10 s after the start, once the collectors have stored something).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobConfig {
    /// Time between two runs (default 1m).
    #[serde(with = "crate::config::duration_text")]
    pub every: Duration,
    /// The trailing window each run analyses (default 24h).
    #[serde(with = "crate::config::duration_text")]
    pub window: Duration,
}

impl Default for JobConfig {
    fn default() -> Self {
        let schedule = Schedule::default();
        JobConfig {
            every: schedule.every,
            window: schedule.window,
        }
    }
}

impl JobConfig {
    /// Both durations must be positive.
    pub fn validate(&self) -> Result<(), crate::AnalyticsError> {
        if self.every.is_zero() || self.window.is_zero() {
            return Err(crate::AnalyticsError::Config(format!(
                "job.every and job.window must be longer than zero, got every = {:?}, window = {:?}",
                tidewatch_devices::format_duration(self.every),
                tidewatch_devices::format_duration(self.window)
            )));
        }
        Ok(())
    }

    /// The schedule it gives.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            every: self.every,
            window: self.window,
            ..Schedule::default()
        }
    }
}

/// One run's outcome.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The window's end, Unix ns.
    pub at_ns: i64,
    /// The analysis, or why there is none (energy PUE could not be computed).
    pub report: Result<Analysis, String>,
    /// Derived points accepted by the store.
    pub written: usize,
    /// How long the run took.
    pub took: Duration,
}

/// A running periodic job.
pub struct PeriodicJob {
    latest: watch::Receiver<Option<Arc<JobRun>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PeriodicJob {
    /// Starts the job on the current tokio runtime. `now_ns` gives the present (the
    /// wall clock in production; a test can pass a clock of its own).
    pub fn start(
        store: Store,
        subjects: Subjects,
        config: AnalyticsConfig,
        schedule: Schedule,
        now_ns: fn() -> i64,
    ) -> PeriodicJob {
        let (publish, latest) = watch::channel(None);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let label = schedule.label();
            let window_ns = i64::try_from(schedule.window.as_nanos()).unwrap_or(i64::MAX);
            let start = tokio::time::Instant::now() + schedule.first_after;
            let mut tick =
                tokio::time::interval_at(start, schedule.every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut written_events = WrittenEvents::default();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|&s| s) => return,
                }
                let started = Instant::now();
                let at_ns = now_ns();
                let window = at_ns.saturating_sub(window_ns)..at_ns;
                let (report, written) = match analyze_range(
                    &store,
                    &subjects,
                    &config,
                    window.clone(),
                )
                .await
                {
                    Ok(analysis) => {
                        let points = analysis_points(
                            &analysis,
                            &DerivedPeriods::Trailing {
                                label: label.clone(),
                            },
                            subjects.inventory.utc_offset_hours,
                        );
                        let points = written_events.keep_new(points, window.start);
                        let written = match store.write(points).await {
                            Ok(w) => w.points,
                            Err(error) => {
                                tracing::error!(%error, "analytics job: cannot write the derived points");
                                0
                            }
                        };
                        for (part, error) in analysis.failures() {
                            tracing::warn!(
                                part,
                                error,
                                "analytics job: part of the analysis failed"
                            );
                        }
                        (Ok(analysis), written)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "analytics job: no report this run");
                        (Err(error.to_string()), 0)
                    }
                };
                let run = JobRun {
                    at_ns,
                    report,
                    written,
                    took: started.elapsed(),
                };
                // Nobody listening is fine: the derived points are in the store.
                let _ = publish.send(Some(Arc::new(run)));
            }
        });
        PeriodicJob { latest, stop, task }
    }

    /// The latest run (`None` before the first), updated after every run.
    pub fn latest(&self) -> watch::Receiver<Option<Arc<JobRun>>> {
        self.latest.clone()
    }

    /// Stops after the run in progress, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The anomaly events already written, by timestamp and series, while inside the
/// window: overlapping windows find the same events again.
#[derive(Default)]
struct WrittenEvents(HashSet<(i64, String)>);

impl WrittenEvents {
    /// `points` without the anomaly events written before; forgets events older than
    /// `window_start`.
    fn keep_new(&mut self, points: Vec<Point>, window_start: i64) -> Vec<Point> {
        self.0.retain(|(at, _)| *at >= window_start);
        points
            .into_iter()
            .filter(|p| {
                if p.measurement() != THERMAL_ANOMALY {
                    return true;
                }
                let series: Vec<String> =
                    p.tags().iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.0.insert((p.timestamp_ns(), series.join(",")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_labels() {
        let label = |secs| {
            Schedule {
                window: Duration::from_secs(secs),
                ..Schedule::default()
            }
            .label()
        };
        assert_eq!(label(86_400), "24h");
        assert_eq!(label(5_400), "90m");
        assert_eq!(label(45), "45s");
    }

    #[test]
    fn the_job_table_gives_the_schedule_and_refuses_zero() {
        let config: crate::AnalyticsConfig =
            toml::from_str("[job]\nevery = \"5s\"\nwindow = \"1h\"\n").unwrap();
        let schedule = config.job.schedule();
        assert_eq!(
            (schedule.every, schedule.window, schedule.label()),
            (
                Duration::from_secs(5),
                Duration::from_secs(3600),
                "1h".into()
            )
        );
        config.validate().unwrap();
        let zero: crate::AnalyticsConfig = toml::from_str("[job]\nevery = \"0s\"\n").unwrap();
        let err = zero.validate().unwrap_err().to_string();
        assert!(
            err.contains("job.every and job.window must be longer than zero"),
            "{err}"
        );
        assert!(toml::from_str::<crate::AnalyticsConfig>("[job]\nevry = \"5s\"\n").is_err());
    }

    #[test]
    fn anomaly_events_are_written_once_while_in_the_window() {
        let event = |at: i64, device: &str| {
            Point::new(THERMAL_ANOMALY, at)
                .tag("device", device)
                .tag("event", "open")
                .field("score", 1.0)
        };
        let other = || Point::new("energy_pue", 100).field("pue", 1.2);
        let mut written = WrittenEvents::default();
        let first = written.keep_new(vec![event(50, "cdu-1"), other()], 0);
        assert_eq!(first.len(), 2);
        // The next run finds the same event and a new one; other points always pass.
        let second = written.keep_new(vec![event(50, "cdu-1"), event(50, "cdu-2"), other()], 10);
        let devices: Vec<_> = second.iter().map(|p| p.tag_value("device")).collect();
        assert_eq!(devices, [Some("cdu-2"), None]);
        // Once the window has passed the event, it is forgotten.
        written.keep_new(vec![], 60);
        assert!(written.0.is_empty());
    }
}
