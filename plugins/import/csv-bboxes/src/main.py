"""Entry point of the CSV bounding boxes import plugin."""

import io
import platform
import sys
import tempfile
from pathlib import Path

import supervisely_lib
from supervisely_lib import logger
from supervisely_lib.task import has_task_config, load_config, load_predefined_configs, task_config_path
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK, IMPORT

import converter

PLUGIN_DIR = Path(__file__).resolve().parent.parent
PREDEFINED_CONFIGS = PLUGIN_DIR / "predefined_run_configs.json"

DEMO_CSV = """\
image,label,x_min,y_min,x_max,y_max,width,height
street_001.jpg,car,12,40,180,150,640,480
street_001.jpg,person,300,60,340,200,640,480
street_002.jpg,car,0,0,99,79,320,240
"""


def report_runtime() -> None:
    print(f"python {platform.python_version()}")
    print(f"supervisely_lib {supervisely_lib.__version__}")
    configs = load_predefined_configs(PREDEFINED_CONFIGS)
    print(f"predefined run configs: {len(configs)} in {PREDEFINED_CONFIGS}")


def finish(conversion: converter.Conversion, result_dir: Path | None, dataset_name: str) -> None:
    for err in conversion.skipped:
        logger.warn("skipped a CSV row", line=err.line, reason=err.reason)
    written = converter.write_project(conversion, result_dir, dataset_name) if result_dir else []
    logger.info(
        "import finished",
        images=len(conversion.annotations),
        objects=conversion.object_count,
        classes=conversion.classes,
        skipped=len(conversion.skipped),
        files_written=len(written),
    )


def main() -> int:
    report_runtime()
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=IMPORT)
    skip_invalid = bool(config.get("options", {}).get("skip_invalid", True))
    dataset_name = str(config.get("dataset_name", "ds0"))

    if not has_task_config():
        logger.info("no task config; converting the built-in demo CSV", skip_invalid=skip_invalid)
        conversion = converter.convert(io.StringIO(DEMO_CSV), skip_invalid=skip_invalid)
        try:
            with tempfile.TemporaryDirectory(prefix="csv-bboxes-") as tmp:
                finish(conversion, Path(tmp), dataset_name)
        except OSError as err:
            # A minimal image may have no writable temporary directory; the conversion itself still ran.
            logger.warn("cannot write the demo result; reporting it without files", error=str(err))
            finish(conversion, None, dataset_name)
        return EXIT_OK

    missing = [key for key in ("csv_path", "result_dir") if key not in config]
    if missing:
        logger.error("task config lacks required keys", config=str(task_config_path()), missing=missing)
        return EXIT_BAD_CONFIG
    csv_path, result_dir = Path(config["csv_path"]), Path(config["result_dir"])
    logger.info("converting CSV", csv_path=str(csv_path), result_dir=str(result_dir), skip_invalid=skip_invalid)
    try:
        with csv_path.open(newline="", encoding="utf-8") as stream:
            conversion = converter.convert(stream, skip_invalid=skip_invalid)
    except converter.RowError as err:
        logger.error("invalid CSV row", csv_path=str(csv_path), line=err.line, reason=err.reason)
        return 1
    finish(conversion, result_dir, dataset_name)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
