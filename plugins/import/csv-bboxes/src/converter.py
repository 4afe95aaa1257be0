"""Turns CSV rows of bounding boxes into Supervisely annotations and writes them as a project."""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

from supervisely_lib import Annotation, Label, Rectangle, ensure_dir

COLUMNS = ("image", "label", "x_min", "y_min", "x_max", "y_max", "width", "height")
_INT_COLUMNS = COLUMNS[2:]
# Class colours are assigned in sorted class order, so a re-import gives the same meta.json.
PALETTE = ("#E6194B", "#3CB44B", "#FFE119", "#4363D8", "#F58231", "#911EB4", "#46F0F0", "#F032E6")


class RowError(ValueError):
    """A CSV row that cannot be converted; `line` is its 1-based line in the file."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Conversion:
    annotations: dict[str, Annotation] = field(default_factory=dict)
    skipped: list[RowError] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted({label.class_title for ann in self.annotations.values() for label in ann.labels})

    @property
    def object_count(self) -> int:
        return sum(len(ann.labels) for ann in self.annotations.values())


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(stream)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise RowError(1, f"header lacks the column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    for row in reader:
        yield reader.line_num, row


def _add_row(conversion: Conversion, line: int, row: dict[str, str]) -> None:
    image, label = (row["image"] or "").strip(), (row["label"] or "").strip()
    if not image or not label:
        raise RowError(line, "empty image or label")
    if "/" in image or "\\" in image or image in (".", ".."):
        raise RowError(line, f"image {image!r} must be a plain file name")
    try:
        x_min, y_min, x_max, y_max, width, height = (int(row[c]) for c in _INT_COLUMNS)
    except (TypeError, ValueError):
        raise RowError(line, "coordinates and sizes must be integers") from None
    if width <= 0 or height <= 0:
        raise RowError(line, f"image size {width}x{height} is not positive")
    ann = conversion.annotations.get(image)
    if ann is None:
        ann = conversion.annotations[image] = Annotation(height=height, width=width)
    elif (ann.width, ann.height) != (width, height):
        raise RowError(line, f"{image} was {ann.width}x{ann.height} on an earlier line, now {width}x{height}")
    try:
        ann.add_label(Label(Rectangle(top=y_min, left=x_min, bottom=y_max, right=x_max), label))
    except ValueError as err:
        raise RowError(line, str(err)) from None


def convert(stream: TextIO, skip_invalid: bool = True, into: Conversion | None = None) -> Conversion:
    """Reads a CSV with the COLUMNS header (into `into`, to merge several files).

    Invalid rows raise RowError unless `skip_invalid`.
    """
    conversion = into if into is not None else Conversion()
    for line, row in read_rows(stream):
        try:
            _add_row(conversion, line, row)
        except RowError as err:
            if not skip_invalid:
                raise
            conversion.skipped.append(err)
    return conversion


def project_meta(classes: list[str]) -> dict:
    return {
        "classes": [
            {"title": title, "shape": "rectangle", "color": PALETTE[i % len(PALETTE)]}
            for i, title in enumerate(sorted(classes))
        ],
        "tags": [],
    }


def write_project(conversion: Conversion, result_dir: Path, dataset_name: str) -> list[Path]:
    """Writes meta.json and <dataset_name>/ann/<image>.json under `result_dir`; returns the files written."""
    ensure_dir(result_dir)
    meta_path = result_dir / "meta.json"
    meta_path.write_text(json.dumps(project_meta(conversion.classes), indent=2) + "\n", encoding="utf-8")
    ann_dir = ensure_dir(result_dir / dataset_name / "ann")
    written = [meta_path]
    for image in sorted(conversion.annotations):
        path = ann_dir / f"{image}.json"
        path.write_text(json.dumps(conversion.annotations[image].to_json(), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
