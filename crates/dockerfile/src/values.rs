//! The values of instructions that are checked once expanded: `--chmod`
//! modes, `EXPOSE` ports, `STOPSIGNAL` signals, `USER` specs. The parser
//! checks them when they are literal, the builder after substitution; both
//! get a [`ValueError`] to put into their own diagnostics.

/// A value an instruction cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not octal digits.
    #[error("expected an octal mode such as 755 or 0644, found `{0}`")]
    NotAMode(String),
    /// Octal, but above `7777`.
    #[error("`{0}` is larger than the largest mode, 7777")]
    ModeTooLarge(String),
    /// A protocol other than tcp, udp, sctp.
    #[error("unknown protocol `{0}`: use tcp, udp or sctp")]
    UnknownProtocol(String),
    /// `host:container`, as `docker run -p` takes.
    #[error("EXPOSE takes container ports; publishing to the host is done with `docker run -p`")]
    HostPort,
    /// Not a port number or range.
    #[error("expected a port from 1 to 65535 or a range such as 8000-8010, found `{0}`")]
    NotAPort(String),
    /// `8010-8000`.
    #[error("the range {start}-{end} ends before it starts")]
    BackwardRange {
        /// First port as written.
        start: u16,
        /// Last port as written.
        end: u16,
    },
    /// A signal number outside 1-64.
    #[error("signal number {0} is out of range 1-64")]
    SignalOutOfRange(u32),
    /// A signal name Linux does not know.
    #[error("unknown signal `{0}`: use a name such as SIGTERM or a number")]
    UnknownSignal(String),
}

/// A file mode for `--chmod`: octal digits such as `755` or `0644`, at
/// most `7777`.
pub fn parse_chmod(text: &str) -> Result<u32, ValueError> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(ValueError::NotAMode(text.to_owned()));
    }
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(ValueError::ModeTooLarge(text.to_owned())),
    }
}

/// One entry of `EXPOSE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// First port of the range.
    pub start: u16,
    /// Last port of the range (`start` for a single port).
    pub end: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// A transport protocol of `EXPOSE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The lower-case name, as in image configs (`80/tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Reads an expanded `EXPOSE` entry: `80`, `80/tcp`, `53/udp`,
/// `8000-8010/tcp` (protocol in any case, `tcp` by default).
pub fn parse_port(text: &str) -> Result<PortSpec, ValueError> {
    let (ports, protocol) = match text.split_once('/') {
        Some((ports, protocol)) => (ports, protocol),
        None => (text, "tcp"),
    };
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return Err(ValueError::UnknownProtocol(protocol.to_owned())),
    };
    if ports.contains(':') {
        return Err(ValueError::HostPort);
    }
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ValueError::NotAPort(ports.to_owned())),
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if end < start {
        return Err(ValueError::BackwardRange { start, end });
    }
    Ok(PortSpec { start, end, protocol })
}

/// Splits an expanded `USER` value into user and group.
pub fn split_user(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    }
}

/// Signal names Linux knows, without `SIG`.
const SIGNALS: [&str; 34] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE",
    "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU",
    "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Checks an expanded `STOPSIGNAL` value: a number from 1 to 64 or a
/// signal name, with or without `SIG`, in any case (`SIGTERM`, `term`).
pub fn validate_signal(text: &str) -> Result<(), ValueError> {
    if let Ok(n) = text.parse::<u32>() {
        return if (1..=64).contains(&n) { Ok(()) } else { Err(ValueError::SignalOutOfRange(n)) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = ["RTMIN", "RTMAX"].iter().any(|rt| {
        name.strip_prefix(rt).is_some_and(|n| {
            n.is_empty()
                || n.strip_prefix(['+', '-'])
                    .is_some_and(|d| d.parse::<u8>().is_ok_and(|d| (1..=15).contains(&d)))
        })
    });
    if SIGNALS.contains(&name) || realtime {
        Ok(())
    } else {
        Err(ValueError::UnknownSignal(text.to_owned()))
    }
}
