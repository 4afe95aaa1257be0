"""A small stand-in for the Supervisely SDK, shared by the sample plugins."""

from supervisely_lib.annotation import Annotation, Label, Rectangle
from supervisely_lib.io.fs import ensure_dir, list_files
from supervisely_lib.logger import (
    EventType,
    Logger,
    get_logger,
    logger,
    report_checkpoint_saved,
    report_import_finished,
    report_inference_finished,
)
from supervisely_lib.task import (
    TASK_CONFIG_PATH,
    TASK_DIR,
    data_dir,
    has_task_config,
    load_config,
    load_predefined_configs,
    model_dir,
    predefined_configs_of,
    report_runtime,
    results_dir,
    task_config_path,
)

from supervisely_lib.version import __version__

__all__ = [
    "Annotation",
    "EventType",
    "Label",
    "Logger",
    "Rectangle",
    "TASK_CONFIG_PATH",
    "TASK_DIR",
    "__version__",
    "data_dir",
    "ensure_dir",
    "get_logger",
    "has_task_config",
    "list_files",
    "load_config",
    "load_predefined_configs",
    "logger",
    "model_dir",
    "predefined_configs_of",
    "report_checkpoint_saved",
    "report_import_finished",
    "report_inference_finished",
    "report_runtime",
    "results_dir",
    "task_config_path",
]
