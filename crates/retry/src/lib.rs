//! The one retry policy of every HTTP caller (the Debian mirror fetcher,
//! the registry client's requests, blob pulls and blob uploads).
//!
//! What is transient, and so worth another try: connection failures
//! (reset, refused, DNS, timeouts, broken HTTP framing), `5xx`, `408` and
//! `429`. Everything else (`4xx`, among them `401` and `403`, a digest that
//! does not match, a local I/O error) fails at once, and so does every TLS
//! failure ([`is_tls_error`]: an unknown issuer, an expired certificate, a
//! wrong name, a refused client certificate), which no retry can change.
//! The wait before retry `n` is the server's `Retry-After` (seconds or an
//! HTTP-date, capped by [`RetryPolicy::max_retry_after`]) when it sent one,
//! else `first_delay * 2^(n-1)`, capped at [`RetryPolicy::max_delay`].
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

/// Whether a failure to get a response at all is worth another try. TLS
/// failures never are.
pub fn is_transient_error(e: &ureq::Error) -> bool {
    !is_tls_error(e)
        && matches!(
            e,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::Protocol(_)
                | ureq::Error::HostNotFound
        )
}

/// The rustls error of a failed handshake, whether ureq reports it as its
/// own variant or (as it does for errors met while reading) inside an I/O
/// error.
pub fn tls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(inner) => Some(inner),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// Whether `e` is a TLS failure: certificates, names, alerts, or a TLS
/// configuration ureq refused.
pub fn is_tls_error(e: &ureq::Error) -> bool {
    tls_error(e).is_some() || matches!(e, ureq::Error::Tls(_))
}

/// `Retry-After` as seconds or as an HTTP-date (`Sun, 06 Nov 1994 08:49:37
/// GMT`, the only date form RFC 9110 lets servers send); a date in the past
/// is no wait.
pub fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = http_date(value)?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// An IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(text: &str) -> Option<std::time::SystemTime> {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (_weekday, rest) = text.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else { return None };
    let day: u64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let year: u64 = year.parse().ok().filter(|y| *y >= 1970)?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
    // days_from_civil).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let seconds = days * 86_400 + h * 3600 + m * 60 + s;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// `503 Service Unavailable`, or the bare number for a status without a name.
pub fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The HTTP agent of the downloaders (Debian's archive, PyPI's wheels):
/// the platform's certificate store (as the registry client's), bounded
/// waits, bytes as served (they are hashed; no transparent decoding) and
/// statuses left to the caller, which judges them with the response's
/// `Retry-After` at hand.
pub fn download_agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .http_status_as_error(false)
        .user_agent(concat!("plugin-forge/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
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
        let past = Response::builder()
            .status(503)
            .header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
            .body(())
            .unwrap();
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
    }

    #[test]
    fn http_dates() {
        let at =
            |text: &str| http_date(text).map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(at("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(at("Tue, 29 Feb 2000 23:59:59 GMT"), Some(951_868_799));
        assert_eq!(at("Tue, 01 Dec 2026 10:00:00 GMT"), Some(1_796_119_200));
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "06 Nov 1994",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
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
        let unknown_issuer = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let as_io = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown_issuer.clone());
        for tls in [ureq::Error::Io(as_io), ureq::Error::Rustls(unknown_issuer)] {
            assert!(is_tls_error(&tls) && !is_transient_error(&tls), "{tls}");
        }
        assert!(!is_tls_error(&ureq::Error::Io(std::io::ErrorKind::InvalidData.into())));
        assert_eq!(status_text(503), "503 Service Unavailable");
        assert_eq!(status_text(599), "599");
    }
}
