"""Inference entry point: labels a batch of feature vectors with a trained model."""

import json
import sys

from supervisely_lib import data_dir, logger, model_dir, report_inference_finished, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK, INFERENCE

from model import DEMO_QUERIES, DEMO_SAMPLES, NearestCentroid

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=INFERENCE)
    max_distance = config.get("max_distance")

    if has_task_config():
        model_path, features_path = model_dir() / "model.json", data_dir() / "queries.json"
        missing = [str(p) for p in (model_path, features_path) if not p.is_file()]
        if missing:
            logger.error("inference needs a model and queries", missing=missing)
            return EXIT_BAD_CONFIG
        model = NearestCentroid.load(model_path)
        items = json.loads(features_path.read_text(encoding="utf-8"))
        queries = [(item["name"], item["features"]) for item in items]
    else:
        logger.info("no task config; labelling the built-in demo vectors", max_distance=max_distance)
        model = NearestCentroid.fit(DEMO_SAMPLES)
        queries = DEMO_QUERIES

    results = []
    for name, features in queries:
        prediction = model.predict(features, max_distance=max_distance)
        results.append({"name": name, **prediction.to_json()})
        logger.info("prediction", image=name, **prediction.to_json())
    labelled = sum(1 for r in results if r["label"] is not None)
    logger.info("inference finished", samples=len(results), labelled=labelled, classes=sorted(model.centroids))

    if has_task_config():
        # The agent uploads /sly_task_data/results once the model is reported applied.
        result_path = results_dir() / "predictions.json"
        result_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        report_inference_finished(path=str(result_path), samples=len(results))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
