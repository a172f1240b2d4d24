//! Throttling of failed sign-ins (NIST SP 800-63B section 5.2.2): after a few consecutive
//! failures on one account, each further try waits longer (30 seconds, doubling, at most an
//! hour); at 100 consecutive failures the account locks until an admin unlocks it. Wrong
//! passwords and wrong second-factor codes both count; a full sign-in resets the count.

use time::{Duration, OffsetDateTime};

/// Failures allowed before waits start.
pub const FREE_FAILURES: u32 = 5;
/// Consecutive failures after which only an admin can unlock the account.
pub const HARD_LIMIT: u32 = 100;
const FIRST_WAIT: Duration = Duration::seconds(30);
const LONGEST_WAIT: Duration = Duration::hours(1);

/// What an account's failure count means now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Open,
    /// Tries before this time are refused without being checked (or counted).
    Until(OffsetDateTime),
    /// Locked until an admin unlocks it.
    Hard,
}

/// The lock after the `failures`-th consecutive failure, at `now`.
pub fn after_failure(failures: u32, now: OffsetDateTime) -> Lock {
    if failures >= HARD_LIMIT {
        return Lock::Hard;
    }
    let Some(over) = failures.checked_sub(FREE_FAILURES) else { return Lock::Open };
    let wait = FIRST_WAIT.checked_mul(1i32 << over.min(20)).unwrap_or(LONGEST_WAIT).min(LONGEST_WAIT);
    Lock::Until(now + wait)
}

/// Whether an account with this lock may try now.
pub fn may_try(lock: Lock, now: OffsetDateTime) -> bool {
    match lock {
        Lock::Open => true,
        Lock::Until(t) => now >= t,
        Lock::Hard => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_then_the_account_locks() {
        let now = time::macros::datetime!(2026-11-24 12:00 UTC);
        for n in 0..FREE_FAILURES {
            assert_eq!(after_failure(n, now), Lock::Open);
        }
        assert_eq!(after_failure(5, now), Lock::Until(now + Duration::seconds(30)));
        assert_eq!(after_failure(6, now), Lock::Until(now + Duration::seconds(60)));
        assert_eq!(after_failure(12, now), Lock::Until(now + Duration::hours(1)));
        assert_eq!(after_failure(99, now), Lock::Until(now + Duration::hours(1)));
        assert_eq!(after_failure(100, now), Lock::Hard);
        assert!(!may_try(Lock::Until(now + Duration::seconds(1)), now));
        assert!(may_try(Lock::Until(now), now));
        assert!(!may_try(Lock::Hard, now + Duration::days(365)));
    }
}
