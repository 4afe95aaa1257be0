"""Train entry point: fits one centroid per class and writes model.json."""

import json
import platform
import sys
import tempfile
from pathlib import Path

import supervisely_lib
from supervisely_lib import ensure_dir, logger
from supervisely_lib.task import has_task_config, load_config, load_predefined_configs
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK, TRAIN

from model import DEMO_SAMPLES, NearestCentroid

PLUGIN_DIR = Path(__file__).resolve().parent.parent
PREDEFINED_CONFIGS = PLUGIN_DIR / "predefined_run_configs.json"


def report_runtime() -> None:
    print(f"python {platform.python_version()}")
    print(f"supervisely_lib {supervisely_lib.__version__}")
    configs = load_predefined_configs(PREDEFINED_CONFIGS)
    print(f"predefined run configs: {len(configs)} in {PREDEFINED_CONFIGS}")


def read_samples(path: Path) -> list[tuple[list[float], str]]:
    return [(item["features"], item["label"]) for item in json.loads(path.read_text(encoding="utf-8"))]


def main() -> int:
    report_runtime()
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=TRAIN)
    metric = config.get("metric", "euclidean")

    if has_task_config():
        if "features_path" not in config or "model_dir" not in config:
            logger.error("task config needs features_path and model_dir")
            return EXIT_BAD_CONFIG
        samples = read_samples(Path(config["features_path"]))
    else:
        logger.info("no task config; training on the built-in demo vectors", metric=metric)
        samples = DEMO_SAMPLES

    try:
        model = NearestCentroid.fit(samples, metric=metric)
    except ValueError as err:
        logger.error("cannot train", error=str(err))
        return EXIT_BAD_CONFIG
    logger.info("training finished", samples=len(samples), metric=model.metric, counts=model.counts,
                centroids={k: [round(v, 4) for v in c] for k, c in model.centroids.items()})

    if has_task_config():
        model_path = ensure_dir(config["model_dir"]) / "model.json"
        model.save(model_path)
        logger.info("model saved", path=str(model_path))
        return EXIT_OK
    try:
        with tempfile.TemporaryDirectory(prefix="tiny-classifier-") as tmp:
            model_path = Path(tmp) / "model.json"
            model.save(model_path)
            round_trip = NearestCentroid.load(model_path)
            logger.info("demo model saved and reloaded", bytes=model_path.stat().st_size,
                        same=round_trip == model)
    except OSError as err:
        logger.warn("cannot write the demo model; kept it in memory", error=str(err))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
