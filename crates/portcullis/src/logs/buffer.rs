//! The queue between logging and a collector. Logging never waits for the network: a record is
//! appended under a short lock and the caller moves on. While the collector is unreachable the
//! queue keeps up to its capacity; past that the oldest lines go first and are counted, and the
//! count is reported once the collector is back, so an outage loses lines visibly, never
//! silently and never by blocking requests.

use super::record::{LogRecord, RecordSink};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// A bounded queue of records, each numbered so a shipper removes exactly what it delivered even
/// if older lines were dropped meanwhile.
#[derive(Debug)]
pub struct LogBuffer {
    inner: Mutex<Inner>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    lines: VecDeque<(u64, Arc<LogRecord>)>,
    next_seq: u64,
    /// Dropped since the last [`LogBuffer::take_dropped`].
    dropped: u64,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { inner: Mutex::new(Inner::default()), ready: Notify::new(), capacity: capacity.max(1) })
    }

    /// A poisoned lock only means a thread panicked while pushing; the queue itself is intact.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, record: Arc<LogRecord>) {
        {
            let mut inner = self.lock();
            if inner.lines.len() >= self.capacity {
                inner.lines.pop_front();
                inner.dropped += 1;
                metrics::counter!("portcullis_log_lines_dropped_total").increment(1);
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.lines.push_back((seq, record));
        }
        self.ready.notify_one();
    }

    /// Up to `max` of the oldest lines (left in place), waiting until there is at least one.
    pub async fn peek(&self, max: usize) -> Vec<(u64, Arc<LogRecord>)> {
        loop {
            let notified = self.ready.notified();
            {
                let inner = self.lock();
                if !inner.lines.is_empty() {
                    return inner.lines.iter().take(max).cloned().collect();
                }
            }
            notified.await;
        }
    }

    /// Forget every line up to and including `seq` (delivered).
    pub fn remove_through(&self, seq: u64) {
        let mut inner = self.lock();
        while inner.lines.front().is_some_and(|(s, _)| *s <= seq) {
            inner.lines.pop_front();
        }
    }

    /// How many lines were dropped for lack of room since the last call.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped)
    }

    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RecordSink for LogBuffer {
    fn accept(&self, record: &Arc<LogRecord>) {
        self.push(record.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> Arc<LogRecord> {
        Arc::new(LogRecord {
            at: time::OffsetDateTime::UNIX_EPOCH,
            level: tracing::Level::INFO,
            target: "t".into(),
            message: format!("line {n}"),
            fields: Default::default(),
        })
    }

    /// Past capacity the oldest lines go and are counted; removing what was delivered never
    /// removes lines pushed after the peek.
    #[tokio::test]
    async fn keeps_the_newest_lines_and_counts_the_dropped() {
        let b = LogBuffer::new(3);
        for n in 0..5 {
            b.push(rec(n));
        }
        assert_eq!(b.take_dropped(), 2);
        assert_eq!(b.take_dropped(), 0);
        let batch = b.peek(10).await;
        assert_eq!(batch.iter().map(|(_, r)| r.message.as_str()).collect::<Vec<_>>(), ["line 2", "line 3", "line 4"]);
        b.push(rec(5));
        b.remove_through(batch.last().unwrap().0);
        assert_eq!(b.len(), 1);
        assert_eq!(b.peek(10).await[0].1.message, "line 5");
    }
}
