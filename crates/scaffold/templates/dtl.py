"""Entry point of the {{title}} DTL plugin: transforms the input projects into a result project."""

import shutil
import sys
from pathlib import Path

from supervisely_lib import EventType, data_dir, logger, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import DTL, EXIT_OK

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def transform(project: Path, result: Path) -> None:
    """Copies the project unchanged; put your transformation here."""
    shutil.copytree(project, result / project.name, dirs_exist_ok=True)


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=DTL)
    if not has_task_config():
        logger.info("no task config; nothing to transform", config=config)
        return EXIT_OK
    # The agent downloads the input projects into /sly_task_data/data/<project>/ and uploads /sly_task_data/results.
    source = data_dir()
    projects = sorted(p for p in source.iterdir() if (p / "meta.json").is_file()) if source.is_dir() else []
    if not projects:
        logger.warn("no project in the data directory", data_dir=str(source))
    for project in projects:
        transform(project, results_dir())
        logger.info("project transformed", project=project.name)
    logger.info("dtl finished", event_type=EventType.DTL_APPLIED, projects=len(projects))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
