"""Image annotations with rectangles, serialised like Supervisely's annotation JSON."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rectangle:
    top: int
    left: int
    bottom: int
    right: int

    geometry_type = "rectangle"

    def __post_init__(self) -> None:
        if self.top > self.bottom or self.left > self.right:
            raise ValueError(f"degenerate rectangle {self}: need top <= bottom and left <= right")

    @property
    def area(self) -> int:
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)

    def to_json(self) -> dict[str, Any]:
        return {"exterior": [[self.left, self.top], [self.right, self.bottom]], "interior": []}


@dataclass(frozen=True)
class Label:
    geometry: Rectangle
    class_title: str

    def to_json(self) -> dict[str, Any]:
        return {
            "classTitle": self.class_title,
            "geometryType": self.geometry.geometry_type,
            "points": self.geometry.to_json(),
        }


@dataclass
class Annotation:
    height: int
    width: int
    labels: list[Label] = field(default_factory=list)

    def add_label(self, label: Label) -> None:
        g = label.geometry
        if g.top < 0 or g.left < 0 or g.bottom >= self.height or g.right >= self.width:
            raise ValueError(f"{label.class_title!r} box {g} lies outside the {self.width}x{self.height} image")
        self.labels.append(label)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": {"height": self.height, "width": self.width},
            "objects": [label.to_json() for label in self.labels],
        }
