"""A small stand-in for the Supervisely SDK, shared by the sample plugins."""

from supervisely_lib.annotation import Annotation, Label, Rectangle
from supervisely_lib.io.fs import ensure_dir, list_files
from supervisely_lib.logger import Logger, get_logger, logger
from supervisely_lib.task import (
    TASK_CONFIG_PATH,
    has_task_config,
    load_config,
    load_predefined_configs,
    task_config_path,
)

__version__ = "0.1.0"

__all__ = [
    "Annotation",
    "Label",
    "Logger",
    "Rectangle",
    "TASK_CONFIG_PATH",
    "__version__",
    "ensure_dir",
    "get_logger",
    "has_task_config",
    "list_files",
    "load_config",
    "load_predefined_configs",
    "logger",
    "task_config_path",
]
