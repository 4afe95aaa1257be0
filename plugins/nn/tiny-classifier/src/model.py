"""A nearest-centroid classifier over short image feature vectors, in pure Python."""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

METRICS = ("euclidean", "manhattan")
MODEL_FORMAT = "tiny-classifier/1"

# Mean (red, green, blue) of a few images, scaled to [0, 1].
DEMO_SAMPLES: list[tuple[list[float], str]] = [
    ([0.82, 0.31, 0.25], "sunset"),
    ([0.76, 0.40, 0.22], "sunset"),
    ([0.21, 0.55, 0.83], "sea"),
    ([0.15, 0.47, 0.90], "sea"),
]
DEMO_QUERIES: list[tuple[str, list[float]]] = [
    ("beach_001.jpg", [0.25, 0.50, 0.80]),
    ("evening_017.jpg", [0.79, 0.35, 0.30]),
    ("forest_004.jpg", [0.20, 0.70, 0.25]),
]


def distance(a: Sequence[float], b: Sequence[float], metric: str) -> float:
    if metric == "euclidean":
        return math.dist(a, b)
    if metric == "manhattan":
        return sum(abs(x - y) for x, y in zip(a, b))
    raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


@dataclass(frozen=True)
class Prediction:
    label: str | None
    distance: float

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "distance": round(self.distance, 6)}


@dataclass
class NearestCentroid:
    centroids: dict[str, list[float]]
    counts: dict[str, int]
    metric: str = "euclidean"

    @property
    def dim(self) -> int:
        return len(next(iter(self.centroids.values())))

    @classmethod
    def fit(cls, samples: Iterable[tuple[Sequence[float], str]], metric: str = "euclidean") -> "NearestCentroid":
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
        sums: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        dim = None
        for features, label in samples:
            if dim is None:
                dim = len(features)
            if len(features) != dim or dim == 0:
                raise ValueError(f"sample of {label!r} has {len(features)} features, expected {dim}")
            acc = sums.setdefault(label, [0.0] * dim)
            for i, value in enumerate(features):
                acc[i] += float(value)
            counts[label] = counts.get(label, 0) + 1
        if not counts:
            raise ValueError("no training samples")
        centroids = {label: [v / counts[label] for v in acc] for label, acc in sorted(sums.items())}
        return cls(centroids=centroids, counts=dict(sorted(counts.items())), metric=metric)

    def predict(self, features: Sequence[float], max_distance: float | None = None) -> Prediction:
        if len(features) != self.dim:
            raise ValueError(f"got {len(features)} features, the model expects {self.dim}")
        # Ties go to the alphabetically first class: centroids are kept sorted.
        label, best = min(
            ((label, distance(features, c, self.metric)) for label, c in self.centroids.items()),
            key=lambda item: item[1],
        )
        if max_distance is not None and best > max_distance:
            return Prediction(None, best)
        return Prediction(label, best)

    def to_json(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "metric": self.metric, "counts": self.counts, "centroids": self.centroids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "NearestCentroid":
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} model (format {data.get('format')!r})")
        return cls(centroids=data["centroids"], counts=data["counts"], metric=data["metric"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "NearestCentroid":
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
