"""Entry point of the {{title}} custom plugin."""

import json
import sys

from supervisely_lib import data_dir, logger, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import CUSTOM, EXIT_OK

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
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
