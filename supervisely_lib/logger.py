"""JSON-lines logging in the shape the Supervisely agent parses from a task's stdout.

Each record is one line: {"message": ..., "level": ..., "timestamp": ..., **extra}.
The agent reads "message" and "level", takes "event_type" (default
"EventType.LOGJ") to decide what to do (upload a checkpoint, a result
project), and keeps the other fields. The clock is injectable so that tests
can compare output byte for byte.
"""

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any, Callable, TextIO

Clock = Callable[[], datetime]

LEVELS = ("debug", "info", "warn", "error", "fatal")
_RESERVED = frozenset({"message", "level", "timestamp"})
# The agent sets LOG_LEVEL=DEBUG; the SDK's names map onto ours.
_LEVEL_ALIASES = {"trace": "debug", "warning": "warn", "critical": "fatal"}


class EventType:
    """Values of "event_type" the agent acts on (str() of the SDK's EventType enum)."""

    LOGJ = "EventType.LOGJ"
    PROGRESS = "EventType.PROGRESS"
    CHECKPOINT = "EventType.CHECKPOINT"
    METRICS = "EventType.METRICS"
    MODEL_APPLIED = "EventType.MODEL_APPLIED"
    DTL_APPLIED = "EventType.DTL_APPLIED"
    IMPORT_APPLIED = "EventType.IMPORT_APPLIED"
    TASK_DEPLOYED = "EventType.TASK_DEPLOYED"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    # A naive datetime is taken as UTC, so a fixed test clock needs no tzinfo.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def level_from_env(default: str = "info") -> str:
    value = os.environ.get("LOG_LEVEL", "").strip().lower()
    value = _LEVEL_ALIASES.get(value, value)
    return value if value in LEVELS else default


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


logger = Logger(level=level_from_env())


def get_logger(stream: TextIO | None = None, clock: Clock = utc_now, level: str = "info") -> Logger:
    return Logger(stream=stream, clock=clock, level=level)


def report_import_finished(**extra: Any) -> None:
    """Tells the agent that the import's results are complete (it uploads /sly_task_data/results)."""
    logger.info("import finished", event_type=EventType.IMPORT_APPLIED, **extra)


def report_inference_finished(**extra: Any) -> None:
    """Tells the agent that the inference's results are complete (it uploads /sly_task_data/results)."""
    logger.info("model applied", event_type=EventType.MODEL_APPLIED, **extra)


def report_checkpoint_saved(checkpoint_idx: int, subdir: str, sizeb: int, best_now: bool, optional_data: Any) -> None:
    """Tells the agent that /sly_task_data/results/<subdir> holds a checkpoint to upload, as the SDK's function of that name does."""
    logger.info(
        "checkpoint",
        event_type=EventType.CHECKPOINT,
        id=checkpoint_idx,
        subdir=subdir,
        sizeb=sizeb,
        best_now=best_now,
        optional=optional_data,
    )
