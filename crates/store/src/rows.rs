//! Row shapes as the SQL returns them, and their conversion into domain records. Decoding a
//! stored value that does not parse is an internal error: the database was written by us.

use portcullis_core::clock::from_millis;
use portcullis_core::error::{Error, Result};
use portcullis_core::model::DeliveryState;
use uuid::Uuid;

/// Parse a stored id into its newtype.
pub(crate) fn id<T>(s: &str, wrap: fn(Uuid) -> T) -> Result<T> {
    Uuid::parse_str(s).map(wrap).map_err(|_| Error::internal(format!("stored id {s:?} is not a UUID")))
}

pub(crate) fn version(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::internal(format!("stored key version {v} is out of range")))
}

pub(crate) fn count(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::internal(format!("stored count {n} is negative")))
}

pub(crate) fn opt_id<T>(s: Option<String>, wrap: fn(Uuid) -> T) -> Result<Option<T>> {
    s.map(|s| id(&s, wrap)).transpose()
}

/// Convert a list of rows.
pub(crate) fn all<R, T>(rows: Vec<R>, f: fn(R) -> Result<T>) -> Result<Vec<T>> {
    rows.into_iter().map(f).collect()
}

/// The delivery columns every outbox table has.
#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryStateRow {
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    sent_at: Option<i64>,
    failed_at: Option<i64>,
    last_error: Option<String>,
}

impl DeliveryStateRow {
    pub(crate) fn into_model(self) -> Result<DeliveryState> {
        Ok(DeliveryState {
            created_at: from_millis(self.created_at),
            attempts: u32::try_from(self.attempts).map_err(Error::internal)?,
            next_attempt_at: from_millis(self.next_attempt_at),
            sent_at: self.sent_at.map(from_millis),
            failed_at: self.failed_at.map(from_millis),
            last_error: self.last_error,
        })
    }
}
