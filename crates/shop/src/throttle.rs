//! Login brute-force protection: failed attempts are counted per account and per client
//! address in a sliding window. Past a soft limit each attempt is slowed (exponential delay);
//! past a hard limit attempts are refused with a retry time until the window has passed.
//!
//! Counts live in this node's memory: a restart forgets them, and several nodes each apply
//! the limits on their own (a shared store such as Redis is the scale-out option).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// How long a failure counts.
    pub window: Duration,
    /// Failures per account before attempts are slowed.
    pub slow_after: u32,
    /// Failures per account before attempts are refused.
    pub account_limit: u32,
    /// Failures per client address before attempts are refused.
    pub address_limit: u32,
    /// Delay of the first slowed attempt; it doubles with each further failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            slow_after: 3,
            account_limit: 10,
            address_limit: 50,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

/// What to do with a login attempt before checking its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Go on after waiting this long.
    Delay(Duration),
    /// Refuse; the client may retry after this long.
    Refuse(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
}

/// Failure counters keyed by account email and by client address.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            accounts: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    pub fn check(&self, email: &str, addr: Option<IpAddr>, now: Instant) -> Verdict {
        let window = self.config.window;
        let current = |f: Option<&Failures>| -> Option<Failures> {
            f.copied().filter(|f| now.duration_since(f.first) < window)
        };
        let account = current(self.accounts.lock().get(email));
        let address = addr.and_then(|a| current(self.addresses.lock().get(&a)));
        let retry = |f: Failures| {
            window
                .saturating_sub(now.duration_since(f.first))
                .max(Duration::from_secs(1))
        };
        if let Some(f) = address.filter(|f| f.count >= self.config.address_limit) {
            return Verdict::Refuse(retry(f));
        }
        match account {
            Some(f) if f.count >= self.config.account_limit => Verdict::Refuse(retry(f)),
            Some(f) if f.count >= self.config.slow_after => {
                let steps = (f.count - self.config.slow_after).min(16);
                let delay = self.config.base_delay.saturating_mul(1 << steps);
                Verdict::Delay(delay.min(self.config.max_delay))
            }
            _ => Verdict::Allow,
        }
    }

    pub fn record_failure(&self, email: &str, addr: Option<IpAddr>, now: Instant) {
        let window = self.config.window;
        let bump = |f: &mut Failures| {
            if now.duration_since(f.first) >= window {
                *f = Failures {
                    count: 0,
                    first: now,
                };
            }
            f.count += 1;
        };
        {
            let mut accounts = self.accounts.lock();
            if accounts.len() > 100_000 {
                accounts.retain(|_, f| now.duration_since(f.first) < window);
            }
            bump(accounts.entry(email.to_owned()).or_insert(Failures {
                count: 0,
                first: now,
            }));
        }
        if let Some(a) = addr {
            let mut addresses = self.addresses.lock();
            if addresses.len() > 100_000 {
                addresses.retain(|_, f| now.duration_since(f.first) < window);
            }
            bump(addresses.entry(a).or_insert(Failures {
                count: 0,
                first: now,
            }));
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn record_success(&self, email: &str) {
        self.accounts.lock().remove(email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            slow_after: 2,
            account_limit: 4,
            address_limit: 6,
            ..ThrottleConfig::default()
        })
    }

    #[test]
    fn failures_first_slow_then_refuse_an_account() {
        let t = throttle();
        let now = Instant::now();
        assert_eq!(t.check("a@x.io", None, now), Verdict::Allow);
        t.record_failure("a@x.io", None, now);
        t.record_failure("a@x.io", None, now);
        assert_eq!(
            t.check("a@x.io", None, now),
            Verdict::Delay(Duration::from_millis(250))
        );
        t.record_failure("a@x.io", None, now);
        assert_eq!(
            t.check("a@x.io", None, now),
            Verdict::Delay(Duration::from_millis(500))
        );
        t.record_failure("a@x.io", None, now);
        assert!(
            matches!(t.check("a@x.io", None, now), Verdict::Refuse(d) if d > Duration::from_secs(800))
        );
        assert_eq!(t.check("other@x.io", None, now), Verdict::Allow);
    }

    #[test]
    fn the_window_forgets_old_failures() {
        let t = throttle();
        let start = Instant::now();
        for _ in 0..4 {
            t.record_failure("a@x.io", None, start);
        }
        let later = start + Duration::from_secs(15 * 60 + 1);
        assert_eq!(t.check("a@x.io", None, later), Verdict::Allow);
    }

    #[test]
    fn one_address_trying_many_accounts_is_refused() {
        let t = throttle();
        let now = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        for i in 0..6 {
            t.record_failure(&format!("u{i}@x.io"), Some(ip), now);
        }
        assert!(matches!(
            t.check("fresh@x.io", Some(ip), now),
            Verdict::Refuse(_)
        ));
        assert_eq!(t.check("fresh@x.io", None, now), Verdict::Allow);
    }

    #[test]
    fn success_clears_the_account() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            t.record_failure("a@x.io", None, now);
        }
        t.record_success("a@x.io");
        assert_eq!(t.check("a@x.io", None, now), Verdict::Allow);
    }
}
