"""Entry point of the dataset stats plugin: per-class object counts of a Supervisely project."""

import json
import platform
import sys
import tempfile
from collections import Counter
from pathlib import Path

import supervisely_lib
from supervisely_lib import Annotation, Label, Rectangle, data_dir, ensure_dir, list_files, logger, results_dir
from supervisely_lib.task import has_task_config, load_config, load_predefined_configs
from supervisely_lib.worker_proto import CUSTOM, EXIT_BAD_CONFIG, EXIT_OK

PLUGIN_DIR = Path(__file__).resolve().parent.parent
# This plugin ships no predefined configs; the file is optional.
PREDEFINED_CONFIGS = PLUGIN_DIR / "predefined_run_configs.json"


def demo_annotations() -> dict[str, dict[str, Annotation]]:
    """Two datasets of a street scene project, keyed by dataset then image name."""
    a = Annotation(height=480, width=640)
    a.add_label(Label(Rectangle(top=40, left=12, bottom=150, right=180), "car"))
    a.add_label(Label(Rectangle(top=60, left=300, bottom=200, right=340), "person"))
    a.add_label(Label(Rectangle(top=70, left=360, bottom=210, right=400), "person"))
    b = Annotation(height=240, width=320)
    b.add_label(Label(Rectangle(top=0, left=0, bottom=79, right=99), "car"))
    return {"day": {"street_001.jpg": a, "street_002.jpg": b}, "night": {"street_101.jpg": Annotation(240, 320)}}


def write_project(root: Path, datasets: dict[str, dict[str, Annotation]]) -> None:
    meta = {"classes": [{"title": t, "shape": "rectangle"} for t in ("bicycle", "car", "person")], "tags": []}
    (root / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    for dataset, annotations in datasets.items():
        ann_dir = ensure_dir(root / dataset / "ann")
        for image, ann in annotations.items():
            (ann_dir / f"{image}.json").write_text(json.dumps(ann.to_json()) + "\n", encoding="utf-8")


def count_objects(annotations: list[dict]) -> Counter:
    return Counter(obj["classTitle"] for ann in annotations for obj in ann.get("objects", []))


def project_stats(root: Path) -> dict:
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{root} is not a Supervisely project: it has no meta.json")
    known = [c["title"] for c in json.loads(meta_path.read_text(encoding="utf-8")).get("classes", [])]
    datasets, total = {}, Counter({title: 0 for title in known})
    for ds_dir in sorted(p for p in root.iterdir() if (p / "ann").is_dir()):
        files = list_files(ds_dir / "ann", extensions=["json"])
        counts = count_objects([json.loads(f.read_text(encoding="utf-8")) for f in files])
        total.update(counts)
        datasets[ds_dir.name] = {"images": len(files), "objects": dict(sorted(counts.items()))}
    unknown = sorted(set(total) - set(known))
    return {"datasets": datasets, "total": dict(sorted(total.items())), "unknown_classes": unknown}


def report(stats: dict) -> None:
    for name, ds in stats["datasets"].items():
        logger.info("dataset stats", dataset=name, **ds)
    if stats["unknown_classes"]:
        logger.warn("objects of classes missing from meta.json", classes=stats["unknown_classes"])
    logger.info("project stats", datasets=len(stats["datasets"]), objects=stats["total"])


def main() -> int:
    print(f"python {platform.python_version()}")
    print(f"supervisely_lib {supervisely_lib.__version__}")
    configs = load_predefined_configs(PREDEFINED_CONFIGS, missing_ok=True)
    found = "found" if PREDEFINED_CONFIGS.exists() else "no such file"
    print(f"predefined run configs: {len(configs)} in {PREDEFINED_CONFIGS} ({found})")

    config = load_config(fallback=PREDEFINED_CONFIGS, config_type=CUSTOM)
    if not has_task_config():
        logger.info("no task config; counting the built-in demo project")
        datasets = demo_annotations()
        try:
            with tempfile.TemporaryDirectory(prefix="dataset-stats-") as tmp:
                write_project(Path(tmp), datasets)
                report(project_stats(Path(tmp)))
        except OSError as err:
            # No writable temporary directory: count the annotations without the round trip through files.
            logger.warn("cannot write the demo project; counting it in memory", error=str(err))
            annotations = [ann.to_json() for anns in datasets.values() for ann in anns.values()]
            logger.info("project stats", datasets=len(datasets), objects=dict(sorted(count_objects(annotations).items())))
        return EXIT_OK

    # A custom task gets its projects downloaded into /sly_task_data/data/<project>/.
    source = data_dir()
    projects = sorted(p for p in source.iterdir() if (p / "meta.json").is_file()) if source.is_dir() else []
    if not projects:
        logger.error("no project to count: no <project>/meta.json in the data directory", data_dir=str(source))
        return EXIT_BAD_CONFIG
    all_stats = {}
    for project in projects:
        try:
            stats = project_stats(project)
        except (OSError, ValueError, KeyError) as err:
            logger.error("cannot read the project", project=project.name, error=str(err))
            return 1
        logger.info("project", project=project.name)
        report(stats)
        all_stats[project.name] = stats
    result_path = results_dir() / "stats.json"
    result_path.write_text(json.dumps(all_stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    logger.info("stats saved", path=str(result_path), projects=len(all_stats))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
