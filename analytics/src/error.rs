//! The analytics' typed errors.

use tidewatch_storage::StoreError;

/// Why an analysis could not be computed. A time range without data is not an
/// error: it gives a report with zero coverage and no PUE.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The requested range is empty or reversed.
    #[error(
        "empty time range: from {start_ns} ns to {end_ns} ns (the end must be after the start)"
    )]
    EmptyRange {
        /// Start, Unix ns.
        start_ns: i64,
        /// End (excluded), Unix ns.
        end_ns: i64,
    },
    /// The configuration asks for meters of a role that a centre does not have, so
    /// the quantity (facility energy, IT energy, ...) cannot be measured there.
    #[error("centre {centre:?} has no meter with role {role} (needed for the {purpose}); the site's meters there are: {available}")]
    NoMeterForRole {
        /// The centre.
        centre: String,
        /// The role asked for (snake_case, as in the site file).
        role: String,
        /// What the meter was wanted for ("IT energy", "facility energy").
        purpose: &'static str,
        /// The centre's meters with their roles, for the message.
        available: String,
    },
    /// A meter of the inventory has no role: it cannot be placed in the energy split.
    #[error("meter {meter:?} of centre {centre:?} has no role: give it one (incoming, ups_output, chiller, ...) in the site description")]
    MeterWithoutRole {
        /// The meter id.
        meter: String,
        /// Its centre.
        centre: String,
    },
    /// The site names no centre at all, or the requested centre is unknown.
    #[error("unknown centre {0:?}")]
    UnknownCentre(String),
    /// The configuration is inconsistent.
    #[error("invalid analytics configuration: {0}")]
    Config(String),
    /// A tariff table is wrong, or no tariff prices a time: names the tariff and the
    /// place (row, month, hour, date) and the cause.
    #[error("tariff {tariff:?}, {place}: {message}")]
    Tariff {
        /// The tariff's name (`(none)` when no tariff applies).
        tariff: String,
        /// Where: "row 3 (month 7, hour 10)", "prices", "valid_from", "2026-03-01 00:00 (local)".
        place: String,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// The store's frame does not have the expected shape.
    #[error("unexpected frame from the store ({context}): {message}")]
    Frame {
        /// What was being read.
        context: String,
        /// What was wrong.
        message: String,
    },
}
