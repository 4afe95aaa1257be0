"""The task directory the Supervisely agent prepares, and reading a task's configuration.

The agent binds a task directory at /sly_task_data (supervisely_lib/task/paths.py
of Supervisely's SDK names the same paths) and writes the task's config to
/sly_task_data/task_config.json, with the deprecated task_settings.json beside it:

    /sly_task_data/task_config.json   the config
    /sly_task_data/data/              input: import files, downloaded projects
    /sly_task_data/model/             input: the model (train, inference, deploy)
    /sly_task_data/results/           output: what the agent uploads afterwards
    /sly_task_data/tmp/               scratch space (train)

When a plugin runs outside the agent, the first matching entry of its
predefined_run_configs.json stands in for a missing config.
"""

import json
import os
import platform
from pathlib import Path
from typing import Any

from supervisely_lib.io.fs import StrPath
from supervisely_lib.version import __version__

TASK_DIR = Path("/sly_task_data")
TASK_CONFIG_PATH = TASK_DIR / "task_config.json"
# Deprecated name of the same file; the agent still writes both.
SETTINGS_PATH = TASK_DIR / "task_settings.json"
DATA_DIR = TASK_DIR / "data"
MODEL_DIR = TASK_DIR / "model"
RESULTS_DIR = TASK_DIR / "results"
TMP_DIR = TASK_DIR / "tmp"
# Lets a plugin be run by hand (tests, a checkout) with its task directory or config elsewhere.
TASK_DIR_ENV = "SLY_TASK_DIR"
TASK_CONFIG_ENV = "TASK_CONFIG_PATH"


def task_dir() -> Path:
    return Path(os.environ.get(TASK_DIR_ENV) or TASK_DIR)


def task_config_path() -> Path:
    return Path(os.environ.get(TASK_CONFIG_ENV) or task_dir() / TASK_CONFIG_PATH.name)


def data_dir() -> Path:
    return task_dir() / DATA_DIR.name


def model_dir() -> Path:
    return task_dir() / MODEL_DIR.name


def results_dir() -> Path:
    return task_dir() / RESULTS_DIR.name


def has_task_config(path: StrPath | None = None) -> bool:
    return Path(path or task_config_path()).is_file()


def predefined_configs_of(entry_file: StrPath) -> Path:
    """The predefined_run_configs.json of the plugin whose entry point is `entry_file` (src/<mode>.py; pass __file__)."""
    return Path(entry_file).resolve().parent.parent / "predefined_run_configs.json"


def report_runtime(predefined_configs: StrPath) -> None:
    """Prints what an entry point runs on (the interpreter, this SDK, the plugin's predefined run configs) as its first lines."""
    print(f"python {platform.python_version()}")
    print(f"supervisely_lib {__version__}")
    configs = load_predefined_configs(predefined_configs)
    print(f"predefined run configs: {len(configs)} in {predefined_configs}")


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
