//! The one retry policy of every HTTP caller (the Debian mirror fetcher,
//! the registry client's requests, blob pulls and blob uploads).
//!
//! What is transient, and so worth another try: connection failures
//! (reset, refused, DNS, timeouts, broken HTTP framing), `5xx`, `408` and
//! `429`. Everything else (`4xx`, a digest that does not match, a local
//! I/O error) fails at once. The wait before retry `n` is the server's
//! `Retry-After` (in seconds, capped by [`RetryPolicy::max_retry_after`])
//! when it sent one, else `first_delay * 2^(n-1)`, capped at
//! [`RetryPolicy::max_delay`].
//!
//! The loop itself is [`RetryPolicy::run`]: the caller's attempt says
//! whether it is [`Attempt::Done`] or [`Attempt::Transient`], and what to
//! return once the retries are used up (a registry response with a `503`
//! is handed back as it is, for the caller to turn into an error with the
//! registry's own message). We wrote these sixty lines rather than take a
//! crate such as `backon`: the delay depends on the failure (`Retry-After`),
//! each retry is reported to a progress bar, and the give-up value is not
//! always an error, which would leave little of such a crate in use.

#![deny(missing_docs)]

use std::time::Duration;

use ureq::http::{Response, StatusCode};

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a transient failure is tried again.
    pub retries: u32,
    /// The first backoff delay; it doubles with every retry.
    pub first_delay: Duration,
    /// The longest backoff delay.
    pub max_delay: Duration,
    /// The longest `Retry-After` we are willing to wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Success, or a failure that another try would not change.
    Done(Result<T, E>),
    /// A transient failure.
    Transient {
        /// What the caller gets when no retry is left.
        give_up: Result<T, E>,
        /// Why, for the notice (`503 Service Unavailable`, `connection reset`).
        reason: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
}

/// A retry about to happen, for progress reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNotice {
    /// The request (`PUT http://...`) or operation that failed.
    pub what: String,
    /// Which retry this is (1 for the first).
    pub attempt: u32,
    /// How long we wait before it.
    pub delay: Duration,
    /// Why (`503 Service Unavailable`, `connection reset`).
    pub reason: String,
}

impl RetryPolicy {
    /// The backoff before retry `retry` (1 for the first).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Runs `attempt` until it is done or the retries are used up,
    /// reporting each retry of `what` to `notify` before waiting.
    pub fn run<T, E>(
        &self,
        what: impl Fn() -> String,
        notify: &dyn Fn(RetryNotice),
        mut attempt: impl FnMut() -> Attempt<T, E>,
    ) -> Result<T, E> {
        let mut retries = 0;
        loop {
            match attempt() {
                Attempt::Done(result) => return result,
                Attempt::Transient { give_up, .. } if retries >= self.retries => return give_up,
                Attempt::Transient { reason, retry_after, .. } => {
                    retries += 1;
                    let delay = match retry_after {
                        Some(asked) => asked.min(self.max_retry_after),
                        None => self.backoff(retries),
                    };
                    notify(RetryNotice { what: what(), attempt: retries, delay, reason });
                    std::thread::sleep(delay);
                }
            }
        }
    }
}

/// Whether a response status is worth another try: `5xx`, `408`, `429`.
pub fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// Whether a failure to get a response at all is worth another try.
pub fn is_transient_error(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::HostNotFound
    )
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries and
/// mirrors, and falls back to our backoff).
pub fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `503 Service Unavailable`, or the bare number for a status without a name.
pub fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy { retries, first_delay: Duration::from_millis(1), ..RetryPolicy::default() }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy { first_delay: Duration::from_millis(100), ..RetryPolicy::default() };
        let delays: Vec<u128> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600]);
        assert_eq!(policy.backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn transient_failures_are_retried_until_the_retries_are_used_up() {
        let notices = RefCell::new(Vec::new());
        let notify = |n: RetryNotice| notices.borrow_mut().push((n.attempt, n.reason));
        let mut calls = 0;
        let result: Result<(), &str> = quick(2).run(
            || "GET /x".into(),
            &notify,
            || {
                calls += 1;
                Attempt::Transient {
                    give_up: Err("gave up"),
                    reason: format!("try {calls}"),
                    retry_after: None,
                }
            },
        );
        assert_eq!(result, Err("gave up"));
        assert_eq!(calls, 3);
        assert_eq!(*notices.borrow(), vec![(1, "try 1".to_owned()), (2, "try 2".to_owned())]);
    }

    #[test]
    fn a_final_failure_is_not_retried_and_success_ends_the_loop() {
        let mut calls = 0;
        let result: Result<u32, &str> = quick(5).run(String::new, &|_| {}, || {
            calls += 1;
            Attempt::Done(Err("404"))
        });
        assert_eq!((result, calls), (Err("404"), 1));
        let mut calls = 0;
        let result: Result<u32, &str> = quick(5).run(String::new, &|_| {}, || {
            calls += 1;
            if calls < 3 {
                Attempt::Transient { give_up: Err("busy"), reason: "busy".into(), retry_after: None }
            } else {
                Attempt::Done(Ok(calls))
            }
        });
        assert_eq!(result, Ok(3));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let policy = RetryPolicy { max_retry_after: Duration::from_millis(5), ..quick(1) };
        let delays = RefCell::new(Vec::new());
        let mut calls = 0;
        let _: Result<(), ()> = policy.run(String::new, &|n| delays.borrow_mut().push(n.delay), || {
            calls += 1;
            Attempt::Transient {
                give_up: Err(()),
                reason: String::new(),
                retry_after: Some(Duration::from_secs(9)),
            }
        });
        assert_eq!(*delays.borrow(), vec![Duration::from_millis(5)]);
        let response = Response::builder().status(429).header("Retry-After", " 7 ").body(()).unwrap();
        assert_eq!(retry_after(&response), Some(Duration::from_secs(7)));
        let response =
            Response::builder().status(429).header("Retry-After", "Wed, 21 Oct 2015").body(()).unwrap();
        assert_eq!(retry_after(&response), None);
    }

    #[test]
    fn what_is_transient() {
        for status in [500, 502, 503, 408, 429] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 416] {
            assert!(!is_transient_status(status), "{status}");
        }
        assert!(is_transient_error(&ureq::Error::ConnectionFailed));
        assert!(is_transient_error(&ureq::Error::Io(std::io::ErrorKind::ConnectionReset.into())));
        assert!(!is_transient_error(&ureq::Error::StatusCode(404)));
        assert_eq!(status_text(503), "503 Service Unavailable");
        assert_eq!(status_text(599), "599");
    }
}
