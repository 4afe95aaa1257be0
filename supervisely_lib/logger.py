"""JSON-lines logging in the shape the Supervisely agent parses from a task's stdout.

Each record is one line: {"message": ..., "level": ..., "timestamp": ..., **extra}.
The clock is injectable so that tests can compare output byte for byte.
"""

import json
import sys
from datetime import datetime, timezone
from typing import Any, Callable, TextIO

Clock = Callable[[], datetime]

LEVELS = ("debug", "info", "warn", "error", "fatal")
_RESERVED = frozenset({"message", "level", "timestamp"})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    # A naive datetime is taken as UTC, so a fixed test clock needs no tzinfo.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Logger:
    def __init__(self, stream: TextIO | None = None, clock: Clock = utc_now, level: str = "info"):
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
        # None means "sys.stdout at write time", so redirection after import still works.
        self._stream = stream
        self._clock = clock
        self._min = LEVELS.index(level)

    def log(self, level: str, message: str, /, **extra: Any) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        if LEVELS.index(level) < self._min:
            return
        clash = _RESERVED.intersection(extra)
        if clash:
            raise ValueError(f"extra fields may not replace {sorted(clash)}")
        record = {"message": message, "level": level, "timestamp": format_timestamp(self._clock())}
        record.update(extra)
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        stream.flush()

    def debug(self, message: str, /, **extra: Any) -> None:
        self.log("debug", message, **extra)

    def info(self, message: str, /, **extra: Any) -> None:
        self.log("info", message, **extra)

    def warn(self, message: str, /, **extra: Any) -> None:
        self.log("warn", message, **extra)

    warning = warn

    def error(self, message: str, /, **extra: Any) -> None:
        self.log("error", message, **extra)


logger = Logger()


def get_logger(stream: TextIO | None = None, clock: Clock = utc_now, level: str = "info") -> Logger:
    return Logger(stream=stream, clock=clock, level=level)
