//! The agent's JSON log lines, shown for people: a plugin's stdout is one
//! JSON object per line (`message`, `level`, `timestamp`, extra fields,
//! `event_type` for what the agent acts on), which the agent parses
//! (`parse_log_line` in `task_dockerized.py`); on a terminal we show the
//! time, a level-coloured level, the message in an aligned column and the
//! fields as `key=value`, and call events out. Lines that are not such
//! objects are shown as they are.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::Value;

/// Width of the message column.
const MESSAGE_WIDTH: usize = 32;

/// One line of a plugin's stdout for a person; `color` adds ANSI styles.
pub fn render_line(line: &str, color: bool) -> String {
    let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let (Some(Value::String(message)), Some(Value::String(level))) =
        (record.remove("message"), record.remove("level"))
    else {
        return line.to_owned();
    };
    let timestamp = match record.remove("timestamp") {
        Some(Value::String(t)) => short_time(&t),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let event = match record.remove("event_type") {
        Some(Value::String(e)) if e != "EventType.LOGJ" => Some(e),
        _ => None,
    };
    let paint = |style: Style, text: &str| {
        if color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    };
    let level_upper = level.to_uppercase();
    let level_style = match level.as_str() {
        "debug" | "trace" => Style::new().dimmed(),
        "info" => AnsiColor::Green.on_default(),
        "warn" | "warning" => AnsiColor::Yellow.on_default().bold(),
        _ => AnsiColor::Red.on_default().bold(),
    };
    let mut out = String::new();
    if !timestamp.is_empty() {
        out.push_str(&paint(Style::new().dimmed(), &timestamp));
        out.push(' ');
    }
    out.push_str(&paint(level_style, &format!("{level_upper:<5}")));
    out.push(' ');
    // An event's tag goes before the message, inside the aligned column.
    let mut width = MESSAGE_WIDTH;
    if let Some(event) = &event {
        let tag = format!("[{}]", event.strip_prefix("EventType.").unwrap_or(event));
        width = width.saturating_sub(tag.chars().count() + 1);
        out.push_str(&paint(AnsiColor::Cyan.on_default().bold(), &tag));
        out.push(' ');
    }
    let fields: Vec<String> = record.iter().map(|(k, v)| format!("{k}={}", field_value(v))).collect();
    if fields.is_empty() {
        out.push_str(&message);
    } else {
        let _ = write!(out, "{message:<width$} {}", paint(Style::new().dimmed(), &fields.join(" ")));
    }
    out
}

/// `HH:MM:SS.mmm` of an ISO 8601 timestamp, or the text as it is.
fn short_time(timestamp: &str) -> String {
    match timestamp.split_once('T') {
        Some((_, time)) if time.len() >= 12 => time[..12].to_owned(),
        _ => timestamp.to_owned(),
    }
}

fn field_value(value: &Value) -> String {
    match value {
        Value::String(s) if !s.is_empty() && !s.contains([' ', '=', '"']) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: &str) {
        assert_eq!(render_line(line, false), expected);
    }

    #[test]
    fn records_are_aligned_and_events_called_out() {
        check(
            r#"{"message": "converted", "level": "info", "timestamp": "2026-12-01T09:57:19.031433Z", "images": 3, "classes": ["car", "person"]}"#,
            r#"09:57:19.031 INFO  converted                        classes=["car","person"] images=3"#,
        );
        check(
            r#"{"message": "checkpoint", "level": "info", "timestamp": "2026-12-01T09:57:05.234152Z", "event_type": "EventType.CHECKPOINT", "subdir": "checkpoint_000"}"#,
            "09:57:05.234 INFO  [CHECKPOINT] checkpoint          subdir=checkpoint_000",
        );
        check(r#"{"message": "bye", "level": "warn"}"#, "WARN  bye");
        check(
            r#"{"message": "x", "level": "error", "event_type": "EventType.LOGJ", "why": "a b"}"#,
            r#"ERROR x                                why="a b""#,
        );
        check("python 3.11.2", "python 3.11.2");
        check(r#"{"message": "no level"}"#, r#"{"message": "no level"}"#);
        check("[1, 2]", "[1, 2]");
        let colored = render_line(r#"{"message": "m", "level": "error"}"#, true);
        assert!(colored.contains("\u{1b}[") && colored.contains("ERROR"), "{colored:?}");
    }
}
