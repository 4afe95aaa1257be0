"""Entry point of the {{title}} custom plugin."""

import json
import platform
import sys
from pathlib import Path

import supervisely_lib
from supervisely_lib import data_dir, logger, results_dir
from supervisely_lib.task import has_task_config, load_config, load_predefined_configs
from supervisely_lib.worker_proto import CUSTOM, EXIT_OK

PLUGIN_DIR = Path(__file__).resolve().parent.parent
PREDEFINED_CONFIGS = PLUGIN_DIR / "predefined_run_configs.json"


def report_runtime() -> None:
    print(f"python {platform.python_version()}")
    print(f"supervisely_lib {supervisely_lib.__version__}")
    configs = load_predefined_configs(PREDEFINED_CONFIGS)
    print(f"predefined run configs: {len(configs)} in {PREDEFINED_CONFIGS}")


def main() -> int:
    report_runtime()
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=CUSTOM)
    logger.info("task started", config=config)
    if not has_task_config():
        logger.info("no task config; ran with the first predefined config")
        return EXIT_OK
    # The agent puts the task's inputs in /sly_task_data/data and uploads /sly_task_data/results.
    source = data_dir()
    inputs = sorted(p.name for p in source.iterdir()) if source.is_dir() else []
    result_path = results_dir() / "result.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps({"inputs": inputs, "config": config}, indent=2) + "\n", encoding="utf-8")
    logger.info("task finished", inputs=len(inputs), path=str(result_path))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
