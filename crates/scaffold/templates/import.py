"""Entry point of the {{title}} import plugin: turns the uploaded files into a project in Supervisely format."""

import json
import sys
from pathlib import Path

from supervisely_lib import data_dir, ensure_dir, list_files, logger, report_import_finished, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import EXIT_OK, IMPORT

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def write_project(root: Path, dataset: str, files: list[Path]) -> None:
    """An empty project (no classes, no annotations) naming the imported files; put your format's reader here."""
    (ensure_dir(root) / "meta.json").write_text(json.dumps({"classes": [], "tags": []}) + "\n", encoding="utf-8")
    ensure_dir(root / dataset / "ann")
    for file in files:
        logger.info("imported file", file=file.name, bytes=file.stat().st_size)


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=IMPORT)
    dataset = config.get("options", {}).get("dataset_name", "ds0")
    if not has_task_config():
        logger.info("no task config; nothing to import", dataset=dataset)
        return EXIT_OK
    # The agent puts the uploaded files in /sly_task_data/data and uploads /sly_task_data/results.
    source = data_dir()
    files = list_files(source, recursive=True) if source.is_dir() else []
    if not files:
        logger.warn("no files in the data directory; the project is empty", data_dir=str(source))
    write_project(results_dir(), dataset, files)
    report_import_finished(files=len(files), dataset=dataset)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
