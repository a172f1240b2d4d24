//! Moving buffered lines to a collector: batches, retries with backoff while it is unreachable,
//! and one line each when it goes away and comes back (not one per failed try).

use super::buffer::LogBuffer;
use super::record::LogRecord;
use std::sync::Arc;
use std::time::Duration;

/// Most lines sent in one go.
const BATCH: usize = 500;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// Why a batch was not delivered.
#[derive(Debug)]
pub enum DeliveryError {
    /// The collector is unreachable or busy: keep the lines and try again.
    Retry(String),
    /// The collector refused these lines for good (malformed, too large): trying again cannot
    /// help, so they are dropped and counted.
    Refused(String),
}

/// A central collector lines are shipped to.
#[async_trait::async_trait]
pub trait Collector: Send + 'static {
    /// For log lines about the shipping itself.
    fn name(&self) -> &'static str;
    /// Deliver `lines`, in order; `Ok` only once the collector has them.
    async fn deliver(&mut self, lines: &[Arc<LogRecord>]) -> Result<(), DeliveryError>;
}

/// Ship `buffer` to `collector` until the task is aborted.
pub fn spawn(buffer: Arc<LogBuffer>, mut collector: Box<dyn Collector>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let name = collector.name();
        let mut retry = FIRST_RETRY;
        let mut down = false;
        loop {
            let batch = buffer.peek(BATCH).await;
            let Some(&(last, _)) = batch.last() else { continue };
            let lines: Vec<Arc<LogRecord>> = batch.into_iter().map(|(_, r)| r).collect();
            let delivered = collector.deliver(&lines).await;
            match delivered {
                Ok(()) => {
                    buffer.remove_through(last);
                    metrics::counter!("portcullis_log_lines_shipped_total", "collector" => name)
                        .increment(lines.len() as u64);
                    retry = FIRST_RETRY;
                    if down {
                        down = false;
                        tracing::info!(collector = name, "log collector reachable again; buffered lines delivered");
                    }
                    let dropped = buffer.take_dropped();
                    if dropped > 0 {
                        tracing::warn!(collector = name, dropped, "log lines were dropped: the buffer was full");
                    }
                }
                Err(DeliveryError::Refused(why)) => {
                    buffer.remove_through(last);
                    metrics::counter!("portcullis_log_lines_dropped_total").increment(lines.len() as u64);
                    tracing::warn!(collector = name, lines = lines.len(), error = %why, "log collector refused lines; dropped");
                }
                Err(DeliveryError::Retry(why)) => {
                    if !down {
                        down = true;
                        tracing::warn!(collector = name, error = %why, "log collector unreachable; buffering lines");
                    }
                    metrics::gauge!("portcullis_log_buffered_lines", "collector" => name).set(buffer.len() as f64);
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LONGEST_RETRY);
                    continue;
                }
            }
            metrics::gauge!("portcullis_log_buffered_lines", "collector" => name).set(buffer.len() as f64);
        }
    })
}
