//! Several PostgreSQL hosts, one of them the primary: `postgres://user:pw@h1:5432,h2:5432/db`,
//! as libpq writes it (with `target_session_attrs=read-write`, which is what this always means
//! here). sqlx connects to one host, so the pool is pointed at the host that answers and is not
//! in recovery; a watcher checks that host every [`CHECK_EVERY`] and, when it is gone or has
//! become a standby, finds the new primary among the hosts and points the pool there.
//! Connections made before the switch are discarded when next handed out. Promotion itself is
//! the failover manager's (pg_auto_failover, Patroni, a managed database): this only follows it.

use portcullis_core::error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the watcher checks the current primary.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one host gets to answer a check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The options for each host of a database URL, in the URL's order. A URL naming one host
/// gives one entry; an empty host list or a host that does not parse is refused with the key.
pub fn split(url: &str) -> Result<Vec<PgConnectOptions>> {
    let bad = |why: &str| Error::invalid("database_url", why.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a postgres:// URL"))?;
    // The host list ends at the first '/' or '?' after the user information.
    let at = rest.rfind('@').map_or(0, |i| i + 1);
    let end = rest[at..].find(['/', '?']).map_or(rest.len(), |i| at + i);
    let (userinfo, hosts, tail) = (&rest[..at], &rest[at..end], &rest[end..]);
    let tail = without_session_attrs(tail);
    let options: Vec<PgConnectOptions> = hosts
        .split(',')
        .map(|h| {
            if h.is_empty() {
                return Err(bad("a host in the list is empty"));
            }
            PgConnectOptions::from_str(&format!("{scheme}://{userinfo}{h}{tail}")).map_err(|e| bad(&e.to_string()))
        })
        .collect::<Result<_>>()?;
    Ok(options)
}

/// Drop `target_session_attrs` (sqlx does not know it; the watcher always wants read-write).
fn without_session_attrs(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_string() };
    let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("target_session_attrs=")).collect();
    if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) }
}

/// Whether `opts` leads to a primary: it answers within the timeout and is not in recovery.
async fn is_primary(opts: &PgConnectOptions) -> bool {
    let check = async {
        let mut c = opts.connect().await.ok()?;
        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut c).await.ok()?;
        let _ = c.close().await;
        Some(!standby)
    };
    tokio::time::timeout(CHECK_TIMEOUT, check).await.ok().flatten().unwrap_or(false)
}

/// The first host that is a primary now.
pub async fn find_primary(hosts: &[PgConnectOptions]) -> Option<usize> {
    for (i, h) in hosts.iter().enumerate() {
        if is_primary(h).await {
            return Some(i);
        }
    }
    None
}

/// When the pool was last pointed elsewhere, for discarding connections older than that.
#[derive(Debug, Default)]
pub struct Switched(std::sync::Mutex<Option<Instant>>);

impl Switched {
    /// Whether a connection opened `age` ago predates the last switch.
    pub fn predates(&self, age: Duration) -> bool {
        let at = self.0.lock().ok().and_then(|g| *g);
        at.is_some_and(|at| age > at.elapsed())
    }

    fn now(&self) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(Instant::now());
        }
    }
}

/// Keep `pool` on the primary among `hosts` (it starts on `hosts[current]`), until aborted.
pub fn watch(
    pool: PgPool,
    hosts: Vec<PgConnectOptions>,
    current: usize,
    switched: Arc<Switched>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut current = current;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(h) = hosts.get(current) else { return };
            if is_primary(h).await {
                continue;
            }
            match find_primary(&hosts).await {
                Some(next) if next != current => {
                    let Some(opts) = hosts.get(next) else { continue };
                    pool.set_connect_options(opts.clone());
                    switched.now();
                    tracing::warn!(from = current, to = next, "the database primary moved: following it");
                    current = next;
                }
                Some(_) => {}
                None => tracing::warn!("no database host is a primary now; checking again"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hosts(url: &str) -> Vec<(String, u16, String)> {
        split(url)
            .unwrap()
            .iter()
            .map(|o| (o.get_host().to_string(), o.get_port(), o.get_database().unwrap_or_default().to_string()))
            .collect()
    }

    #[test]
    fn a_host_list_gives_one_option_set_per_host() {
        assert_eq!(hosts("postgres://u:p@db1:5432/app"), [("db1".into(), 5432, "app".into())]);
        assert_eq!(
            hosts(
                "postgres://u:p%40ss@10.0.0.1:5433,10.0.1.1:5434/app?sslmode=require&target_session_attrs=read-write"
            ),
            [("10.0.0.1".into(), 5433, "app".into()), ("10.0.1.1".into(), 5434, "app".into())]
        );
        assert_eq!(hosts("postgresql://a,b/app").len(), 2);
        assert_eq!(without_session_attrs("/app?target_session_attrs=read-write"), "/app");
        assert_eq!(without_session_attrs("/app?sslmode=require&target_session_attrs=any"), "/app?sslmode=require");
        for bad in ["postgres://u@a,,b/app", "db1:5432", "postgres://u@a:notaport/app"] {
            let e = split(bad).unwrap_err();
            assert!(e.public_message().contains("database_url"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn connections_from_before_a_switch_are_stale() {
        let s = Switched::default();
        assert!(!s.predates(Duration::from_secs(3600)), "no switch yet");
        s.now();
        assert!(s.predates(Duration::from_secs(5)));
        assert!(!s.predates(Duration::ZERO));
    }
}
