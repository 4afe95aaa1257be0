"""Entry point of the CSV bounding boxes import plugin."""

import io
import sys
import tempfile
from pathlib import Path

from supervisely_lib import data_dir, list_files, logger, report_import_finished, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime, task_config_path
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK, IMPORT

import converter

PREDEFINED_CONFIGS = predefined_configs_of(__file__)

DEMO_CSV = """\
image,label,x_min,y_min,x_max,y_max,width,height
street_001.jpg,car,12,40,180,150,640,480
street_001.jpg,person,300,60,340,200,640,480
street_002.jpg,car,0,0,99,79,320,240
"""


def finish(conversion: converter.Conversion, result_dir: Path | None, dataset_name: str) -> list[Path]:
    for err in conversion.skipped:
        logger.warn("skipped a CSV row", line=err.line, reason=err.reason)
    written = converter.write_project(conversion, result_dir, dataset_name) if result_dir else []
    logger.info(
        "converted",
        images=len(conversion.annotations),
        objects=conversion.object_count,
        classes=conversion.classes,
        skipped=len(conversion.skipped),
        files_written=len(written),
    )
    return written


def run_demo(skip_invalid: bool, dataset_name: str) -> int:
    logger.info("no task config; converting the built-in demo CSV", skip_invalid=skip_invalid)
    conversion = converter.convert(io.StringIO(DEMO_CSV), skip_invalid=skip_invalid)
    try:
        with tempfile.TemporaryDirectory(prefix="csv-bboxes-") as tmp:
            finish(conversion, Path(tmp), dataset_name)
    except OSError as err:
        # A minimal image may have no writable temporary directory; the conversion itself still ran.
        logger.warn("cannot write the demo result; reporting it without files", error=str(err))
        finish(conversion, None, dataset_name)
    logger.info("import finished", demo=True)
    return EXIT_OK


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    # The agent writes an import's "human config": res_names, preset, options, ...
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=IMPORT)
    options = config.get("options") or {}
    skip_invalid = bool(options.get("skip_invalid", True))
    dataset_name = str(options.get("dataset_name", "ds0"))
    if not has_task_config():
        return run_demo(skip_invalid, dataset_name)

    project = str((config.get("res_names") or {}).get("project", "project"))
    source = data_dir()
    csv_files = list_files(source, extensions=["csv"], recursive=True) if source.is_dir() else []
    if not csv_files:
        logger.error("no CSV file to import", data_dir=str(source), config=str(task_config_path()))
        return EXIT_BAD_CONFIG
    logger.info("converting CSV", files=[str(f) for f in csv_files], skip_invalid=skip_invalid)
    conversion = converter.Conversion()
    for csv_path in csv_files:
        try:
            with csv_path.open(newline="", encoding="utf-8") as stream:
                converter.convert(stream, skip_invalid=skip_invalid, into=conversion)
        except converter.RowError as err:
            logger.error("invalid CSV row", csv_path=str(csv_path), line=err.line, reason=err.reason)
            return 1
    # The agent uploads /sly_task_data/results as the project `res_names.project`.
    finish(conversion, results_dir(), dataset_name)
    report_import_finished(project=project, dataset=dataset_name)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
