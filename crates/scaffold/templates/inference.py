"""Inference entry point of the {{title}} neural network plugin: applies the model to the input data."""

import json
import sys

from supervisely_lib import data_dir, logger, model_dir, report_inference_finished, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import EXIT_OK, INFERENCE

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def predict(model: dict, inputs: list[str], config: dict) -> list[dict]:
    """One prediction per input; put your model's forward pass here."""
    threshold = config.get("confidence_threshold", 0.5)
    return [{"name": name, "label": None, "threshold": threshold, "model": model} for name in inputs]


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=INFERENCE)
    model_path = model_dir() / "model.json"
    model = json.loads(model_path.read_text(encoding="utf-8")) if model_path.is_file() else {}
    source = data_dir()
    inputs = sorted(p.name for p in source.iterdir()) if source.is_dir() else []
    predictions = predict(model, inputs, config)
    logger.info("inference finished", samples=len(predictions), model_found=bool(model))
    if not has_task_config():
        logger.info("no task config; the predictions are not saved")
        return EXIT_OK
    # The agent uploads /sly_task_data/results once the model is reported applied.
    result_path = results_dir() / "predictions.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(predictions, indent=2) + "\n", encoding="utf-8")
    report_inference_finished(path=str(result_path), samples=len(predictions))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
