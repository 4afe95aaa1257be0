"""Train entry point of the {{title}} neural network plugin: writes a checkpoint the agent uploads."""

import json
import sys
from pathlib import Path

from supervisely_lib import data_dir, ensure_dir, logger, report_checkpoint_saved, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import EXIT_OK, TRAIN

PREDEFINED_CONFIGS = predefined_configs_of(__file__)
# The agent uploads /sly_task_data/results/<subdir> when a checkpoint is reported.
CHECKPOINT_SUBDIR = "checkpoint_000"


def train(config: dict, data: Path) -> dict:
    """The model to save; put your training loop here."""
    epochs = int(config.get("epochs", 1))
    for epoch in range(epochs):
        logger.info("epoch finished", epoch=epoch + 1, epochs=epochs)
    return {"epochs": epochs, "trained_on": str(data)}


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=TRAIN)
    model = train(config, data_dir())
    logger.info("training finished", **model)
    if not has_task_config():
        logger.info("no task config; the model is not saved")
        return EXIT_OK
    checkpoint = ensure_dir(results_dir() / CHECKPOINT_SUBDIR)
    (checkpoint / "model.json").write_text(json.dumps(model) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in checkpoint.iterdir())
    report_checkpoint_saved(0, CHECKPOINT_SUBDIR, size, True, {"epochs": model["epochs"]})
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
