"""Reading a task's configuration.

The agent writes the config of a task to /sessions/task_config.json. When a
plugin runs outside the agent, the first matching entry of its
predefined_run_configs.json stands in for it.
"""

import json
import os
from pathlib import Path
from typing import Any

from supervisely_lib.io.fs import StrPath

TASK_CONFIG_PATH = Path("/sessions/task_config.json")
# Lets a plugin be run by hand with a config placed elsewhere.
TASK_CONFIG_ENV = "TASK_CONFIG_PATH"


def task_config_path() -> Path:
    return Path(os.environ.get(TASK_CONFIG_ENV) or TASK_CONFIG_PATH)


def has_task_config(path: StrPath | None = None) -> bool:
    return Path(path or task_config_path()).is_file()


def load_predefined_configs(path: StrPath, missing_ok: bool = False) -> list[dict[str, Any]]:
    """Entries of a predefined_run_configs.json: [{"title", "type", "config"}, ...]."""
    path = Path(path)
    if missing_ok and not path.exists():
        return []
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON array")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"title", "type", "config"} <= entry.keys():
            raise ValueError(f"{path}: entry {i} needs \"title\", \"type\" and \"config\"")
        if not isinstance(entry["config"], dict):
            raise ValueError(f"{path}: entry {i}: \"config\" must be an object")
    return entries


def load_config(
    path: StrPath | None = None, fallback: StrPath | None = None, config_type: str | None = None
) -> dict[str, Any]:
    """The task config at `path` (default: task_config_path()).

    Without one, the config of the first entry of `fallback` (a
    predefined_run_configs.json) whose type is `config_type` (any type if None);
    without that either, an empty dict.
    """
    path = Path(path or task_config_path())
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return config
    if fallback is not None:
        for entry in load_predefined_configs(fallback, missing_ok=True):
            if config_type is None or entry["type"] == config_type:
                return dict(entry["config"])
    return {}
