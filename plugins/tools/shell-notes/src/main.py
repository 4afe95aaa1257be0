"""Entry point of the Shell notes custom plugin: reports what its Dockerfile's shell RUN made."""

import json
import os
import sys
from pathlib import Path

from supervisely_lib import logger, results_dir
from supervisely_lib.task import has_task_config, load_config, predefined_configs_of, report_runtime
from supervisely_lib.worker_proto import CUSTOM, EXIT_OK

PREDEFINED_CONFIGS = predefined_configs_of(__file__)


def notes() -> dict:
    """What the RUN left: the banner through its symlink, the replaced directory, the deleted file."""
    banner = Path("/opt/notes/banner")
    motd = Path("/etc/update-motd.d")
    return {
        "banner": banner.read_text(encoding="utf-8").strip(),
        "banner_link": os.readlink(banner),
        "update_motd": sorted(p.name for p in motd.iterdir()),
        "issue_net": Path("/etc/issue.net").exists(),
    }


def main() -> int:
    report_runtime(PREDEFINED_CONFIGS)
    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=CUSTOM)
    found = notes()
    print(json.dumps(found, sort_keys=True))
    logger.info("shell notes", **found)
    if has_task_config():
        result_path = results_dir() / "notes.json"
        result_path.parent.mkdir(parents=True, exist_ok=True)
        result_path.write_text(json.dumps({"notes": found, "config": config}, indent=2) + "\n", encoding="utf-8")
        logger.info("task finished", path=str(result_path))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
