"""Deploy entry point: keeps a model loaded and answers requests, one JSON object per stdin line.

A request is {"id": ..., "features": [...]}; each answer is logged as a
"prediction" record carrying the request id.
"""

import json
import sys
from typing import Iterable

from supervisely_lib import EventType, logger, model_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK, INFERENCE

from model import DEMO_QUERIES, DEMO_SAMPLES, NearestCentroid

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def serve(model: NearestCentroid, lines: Iterable[str], max_distance: float | None) -> int:
    answered = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            prediction = model.predict(request["features"], max_distance=max_distance)
        except (ValueError, KeyError, TypeError) as err:
            logger.warn("bad request", error=str(err))
            continue
        logger.info("prediction", id=request.get("id"), **prediction.to_json())
        answered += 1
    return answered


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    # The agent writes the server's settings, plus "connection" and "model_settings".
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=INFERENCE)
    max_distance = (config.get("model_settings") or config).get("max_distance")

    if has_task_config():
        model_path = model_dir() / "model.json"
        if not model_path.is_file():
            logger.error("deploy needs a model", missing=str(model_path))
            return EXIT_BAD_CONFIG
        model = NearestCentroid.load(model_path)
        logger.info("model deployed; reading requests from stdin", event_type=EventType.TASK_DEPLOYED,
                    classes=sorted(model.centroids))
        lines: Iterable[str] = sys.stdin
    else:
        model = NearestCentroid.fit(DEMO_SAMPLES)
        logger.info("no task config; answering built-in demo requests", classes=sorted(model.centroids))
        lines = [json.dumps({"id": name, "features": features}) for name, features in DEMO_QUERIES]

    answered = serve(model, lines, max_distance)
    logger.info("deploy stopped", answered=answered)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
