"""Train entry point: fits one centroid per class and writes model.json."""

import json
import sys
import tempfile
from pathlib import Path

from supervisely_lib import data_dir, ensure_dir, logger, report_checkpoint_saved, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK, TRAIN

from model import DEMO_SAMPLES, NearestCentroid

PREDEFINED_CONFIGS = predefined_configs_of(__file__)
# The agent uploads /sly_task_data/results/<subdir> when a checkpoint is reported.
CHECKPOINT_SUBDIR = "checkpoint_000"


def read_samples(path: Path) -> list[tuple[list[float], str]]:
    return [(item["features"], item["label"]) for item in json.loads(path.read_text(encoding="utf-8"))]


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=TRAIN)
    metric = config.get("metric", "euclidean")

    if has_task_config():
        features_path = data_dir() / "features.json"
        if not features_path.is_file():
            logger.error("no training data: expected features.json in the data directory", data_dir=str(data_dir()))
            return EXIT_BAD_CONFIG
        samples = read_samples(features_path)
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
        checkpoint = ensure_dir(results_dir() / CHECKPOINT_SUBDIR)
        model.save(checkpoint / "model.json")
        (checkpoint / "config.json").write_text(json.dumps({"metric": model.metric}) + "\n", encoding="utf-8")
        size = sum(f.stat().st_size for f in checkpoint.iterdir())
        report_checkpoint_saved(0, CHECKPOINT_SUBDIR, size, True, {"metric": model.metric})
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
