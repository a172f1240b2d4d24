//! The delivery loop every durable outbox shares (the mail outbox, the alert outbox): rows
//! written in the transaction of the change they report, sent later by whichever node gets to
//! them first.
//!
//! Delivery is at least once. A node takes a row with a lease (a compare-and-set on its due
//! time), sends, then marks it sent; if it dies between sending and marking, the lease runs out
//! and the row is sent again. A failed attempt counts, keeps its error, and makes the row due
//! again after a backoff; when the outbox says to give up, the row is marked failed (and the
//! outbox audits that). Each outbox says how its rows are stored, sent, retried and audited.

use super::Portal;
use crate::error::Result;
use crate::model::DeliveryState;
use crate::ports::Tx;
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

/// How long a node may take to send a row it took before another node may take it again.
/// Far above the SMTP and HTTP clients' own time limits, so a slow send is not duplicated.
pub const LEASE: Duration = Duration::minutes(5);

/// At most this many rows per delivery run; the rest wait for the next.
const BATCH: i64 = 50;

/// The longest an error text kept on a row may be.
const MAX_ERROR: usize = 500;

/// Exponential backoff: `first` after the first failure, doubling, at most `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait after `attempts` failed attempts.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first.saturating_mul(1_i32 << doublings).min(self.cap)
    }

    /// The wait with jitter: a point in the upper half of [`Backoff::delay`] chosen by `sample`
    /// (uniformly random in practice), so receivers coming back after an outage are not hit by
    /// every node's retries at the same instant.
    pub fn jittered(&self, attempts: u32, sample: u32) -> Duration {
        let full = self.delay(attempts);
        let half = full / 2;
        half + (full - half) * (f64::from(sample) / f64::from(u32::MAX))
    }
}

/// A random `u32` for jitter (0 if the system generator fails: jitter is not security).
pub(super) fn random_sample() -> u32 {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut b);
    u32::from_le_bytes(b)
}

/// What one delivery run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u32,
    /// Failed this time; due again later.
    pub retrying: u32,
    /// Failed for the last time.
    pub given_up: u32,
}

/// A failed attempt, as an outbox records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Failure {
    /// Failed attempts, this one included.
    pub attempts: u32,
    pub error: String,
    /// When the row is due again (unused once given up).
    pub next_attempt_at: OffsetDateTime,
    /// Set when this was the last attempt.
    pub gave_up: Option<OffsetDateTime>,
}

/// One outbox: where its rows are and how they are sent, retried and recorded.
#[async_trait]
pub(super) trait Outbox: Sync {
    type Row: Send + Sync;

    /// Rows due at `now`, oldest first, at most `limit`.
    async fn due(&self, tx: &mut dyn Tx, now: OffsetDateTime, limit: i64) -> Result<Vec<Self::Row>>;
    /// Take `row` until `until` if it is still as read (no other node took it).
    async fn lease(&self, tx: &mut dyn Tx, row: &Self::Row, until: OffsetDateTime) -> Result<bool>;
    /// Deliver it.
    async fn send(&self, portal: &Portal, row: &Self::Row) -> Result<()>;
    /// Record (and audit) the delivery.
    async fn sent(&self, tx: &mut dyn Tx, row: &Self::Row, now: OffsetDateTime) -> Result<()>;
    /// Where the row stands (its attempts so far).
    fn state<'r>(&self, row: &'r Self::Row) -> &'r DeliveryState;
    /// When to try again after the `attempts`-th failure, or `None` to give up.
    fn retry_at(&self, row: &Self::Row, attempts: u32, now: OffsetDateTime) -> Option<OffsetDateTime>;
    /// Record a failed attempt (and audit giving up).
    async fn failed(&self, tx: &mut dyn Tx, row: &Self::Row, f: &Failure) -> Result<()>;
}

impl Portal {
    /// Send what is due in `outbox`. Rows another node holds a lease on are left to it. Errors
    /// of single rows are recorded on them, not returned.
    pub(super) async fn drain<O: Outbox>(&self, outbox: &O) -> Result<DeliveryReport> {
        let due = {
            let mut tx = self.read().await?;
            outbox.due(&mut *tx, self.clock.now(), BATCH).await?
        };
        let mut report = DeliveryReport::default();
        for row in due {
            let mut tx = self.write().await?;
            let won = outbox.lease(&mut *tx, &row, self.clock.now() + LEASE).await?;
            tx.commit().await?;
            if !won {
                continue;
            }
            let result = outbox.send(self, &row).await;
            let now = self.clock.now();
            let mut tx = self.write().await?;
            match result {
                Ok(()) => {
                    outbox.sent(&mut *tx, &row, now).await?;
                    report.sent += 1;
                }
                Err(e) => {
                    let attempts = outbox.state(&row).attempts.saturating_add(1);
                    let retry = outbox.retry_at(&row, attempts, now);
                    let f = Failure {
                        attempts,
                        error: e.to_string().chars().take(MAX_ERROR).collect(),
                        next_attempt_at: retry.unwrap_or(now),
                        gave_up: retry.is_none().then_some(now),
                    };
                    outbox.failed(&mut *tx, &row, &f).await?;
                    if retry.is_some() {
                        report.retrying += 1;
                    } else {
                        report.given_up += 1;
                    }
                }
            }
            tx.commit().await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_in_the_upper_half() {
        let b = Backoff { first: Duration::seconds(10), cap: Duration::minutes(15) };
        assert_eq!(b.delay(1), Duration::seconds(10));
        assert_eq!(b.delay(3), Duration::seconds(40));
        assert_eq!(b.delay(8), Duration::minutes(15));
        assert_eq!(b.delay(u32::MAX), Duration::minutes(15));
        assert_eq!(b.jittered(3, 0), Duration::seconds(20));
        assert_eq!(b.jittered(3, u32::MAX), Duration::seconds(40));
        let mid = b.jittered(3, u32::MAX / 2);
        assert!(mid > Duration::seconds(29) && mid < Duration::seconds(31), "{mid}");
        assert_ne!(random_sample(), random_sample());
    }
}
