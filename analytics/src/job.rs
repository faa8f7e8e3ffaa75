//! The periodic analytics job: inside a long-running process (`tidewatch demo`, and
//! the `run` service to come), every `every` it computes the energy PUE report over the
//! trailing `window`, writes it back to the store as derived measurements
//! ([`crate::derived`], `period` tag = the window's label) and publishes it in process
//! (a `tokio::sync::watch` channel: the alert engine and the dashboards subscribe and
//! always see the latest result).
//!
//! A failed run (the store unreadable, a meter without data) is published as an error
//! and logged; the job carries on at the next tick. Runs never overlap: a run that
//! takes longer than `every` delays the next tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidewatch_storage::store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::AnalyticsConfig;
use crate::derived::{pue_points, DerivedPeriods};
use crate::inventory::Inventory;
use crate::pue::{energy_pue, PueReport};

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

/// One run's outcome.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The window's end, Unix ns.
    pub at_ns: i64,
    /// The report, or why there is none.
    pub report: Result<PueReport, String>,
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
        inventory: Inventory,
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
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|&s| s) => return,
                }
                let started = Instant::now();
                let at_ns = now_ns();
                let window = at_ns.saturating_sub(window_ns)..at_ns;
                let (report, written) = match energy_pue(&store, &inventory, &config, window).await
                {
                    Ok(report) => {
                        let points = pue_points(
                            &report,
                            &DerivedPeriods::Trailing {
                                label: label.clone(),
                            },
                            inventory.utc_offset_hours,
                        );
                        let written = match store.write(points).await {
                            Ok(w) => w.points,
                            Err(error) => {
                                tracing::error!(%error, "analytics job: cannot write the derived points");
                                0
                            }
                        };
                        (Ok(report), written)
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
}
