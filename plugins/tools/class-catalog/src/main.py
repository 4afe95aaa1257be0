"""Entry point of the class catalog plugin: a YAML list of a project's classes with slugs and counts."""

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from slugify import slugify

from supervisely_lib import data_dir, logger, results_dir
from supervisely_lib.task import has_task_config
from supervisely_lib.worker_proto import EXIT_BAD_CONFIG, EXIT_OK

DEMO_META = {"classes": [{"title": "Traffic light (red)", "shape": "rectangle"}, {"title": "Straße", "shape": "polygon"}]}


def check_json(path: Path) -> bool:
    """Whether jq accepts `path` as JSON; jq's message is logged when not."""
    done = subprocess.run(["jq", "-e", ".", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        logger.error("not valid JSON", file=str(path), jq=done.stderr.strip())
    return done.returncode == 0


def catalog(project: Path) -> dict:
    meta = json.loads((project / "meta.json").read_text(encoding="utf-8"))
    counts: Counter = Counter()
    bad = []
    for ann in sorted(project.glob("*/ann/*.json")):
        if not check_json(ann):
            bad.append(str(ann.relative_to(project)))
            continue
        counts.update(obj["classTitle"] for obj in json.loads(ann.read_text(encoding="utf-8")).get("objects", []))
    classes = [
        {"title": c["title"], "slug": slugify(c["title"]), "shape": c.get("shape"), "objects": counts.get(c["title"], 0)}
        for c in meta.get("classes", [])
    ]
    return {"classes": classes, "invalid_annotations": bad}


def main() -> int:
    print(f"jq: {shutil.which('jq')}")
    print(f"PyYAML {yaml.__version__} (C extension: {yaml.__with_libyaml__})")
    if not has_task_config():
        logger.info("no task config; cataloging the built-in demo classes")
        classes = [{"title": c["title"], "slug": slugify(c["title"])} for c in DEMO_META["classes"]]
        print(yaml.safe_dump({"demo": classes}, allow_unicode=True, sort_keys=False), end="")
        return EXIT_OK
    source = data_dir()
    projects = sorted(p for p in source.iterdir() if (p / "meta.json").is_file()) if source.is_dir() else []
    if not projects:
        logger.error("no project to catalog: no <project>/meta.json in the data directory", data_dir=str(source))
        return EXIT_BAD_CONFIG
    result = {project.name: catalog(project) for project in projects}
    out = results_dir() / "catalog.yaml"
    out.write_text(yaml.safe_dump(result, allow_unicode=True, sort_keys=True), encoding="utf-8")
    for name, entry in result.items():
        logger.info("catalog", project=name, classes=len(entry["classes"]), invalid=len(entry["invalid_annotations"]))
    logger.info("catalog saved", path=str(out), projects=len(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
