"""Record what OpenCV 4 DNN detects with the packaged SSD-MobileNet-v2 graph, as test data.

pixelsift runs that graph as a torch network (`detect.backends.ssd_mobilenet`); the test
`tests/integration/test_ssd_matches_opencv.py` compares it with these numbers, so it needs no OpenCV
(OpenCV 5 cannot read TensorFlow graphs at all). Recorded once with OpenCV 4, from `samples/` and,
where `../shared` is present, its photos (only numbers are stored: dev-only photos are never committed).

    .venv/bin/python tools/record_ssd_reference.py tests/data/ssd_opencv4.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def photos() -> list[Path]:
    found = sorted((REPO / "samples").glob("*.[jp][pn]g"))
    shared = REPO.parent / "shared" / "photos"
    found += sorted((shared / "dev-only").glob("*.[jp][pn]g"))
    return found


def label(path: Path) -> str:
    """The photo's name as the test finds it: `samples/...` or `shared/photos/...`."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path.relative_to(REPO.parent))


def main(argv: list[str]) -> int:
    import cv2

    from pixelsift.detect.backends.opencv_dnn import load_model_file
    from pixelsift.models import weights
    from pixelsift.models.registry import get_model_spec
    from pixelsift.runtime.options import RunOptions

    if int(cv2.__version__.split(".")[0]) >= 5:
        print("needs OpenCV 4 (OpenCV 5 has no TensorFlow importer)", file=sys.stderr)
        return 1
    graph = weights.resolve(get_model_spec("ssd_mobilenet_v2_coco"), download=False)
    # OpenCV DNN itself (load_detector would run the torch network); conf 0.01 and iou 1: the graph's
    # own output, untouched by pixelsift's thresholds
    detector = load_model_file(graph, RunOptions(), conf=0.01, iou=1.0)
    out: dict[str, object] = {"opencv": cv2.__version__, "conf": 0.01, "iou": 1.0, "photos": {}}
    table: dict[str, object] = {}
    for result in detector.iter_detect(photos()):
        assert result.ok, result.error
        dets = result.detections
        rows = [
            [name, round(float(score), 5), *(round(float(v), 2) for v in box)] for box, score, _, name in dets
        ]
        table[label(Path(result.path))] = {"size": [result.width, result.height], "detections": rows}
    out["photos"] = table
    Path(argv[0]).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {argv[0]}: {len(table)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
