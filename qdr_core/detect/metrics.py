"""Detection quality against pseudo ground truth: detections on the clean frame are the reference.

AP@0.5 and recall@0.5 come from pycocotools' COCOeval (person class, all areas, 100 detections
per frame), so they are computed exactly as COCO mAP is, only with a single IoU threshold.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from qdr_core.detect.detectors import Detections

#: Clean-frame detections at or above this score become the reference boxes.
REFERENCE_SCORE = 0.5


def detection_ap(
    reference: Sequence[Detections], predicted: Sequence[Detections], reference_score: float = REFERENCE_SCORE
) -> dict[str, float | int | None]:
    """AP@0.5 and recall@0.5 of ``predicted`` against ``reference`` boxes (frame by frame).

    Returns ``ap50`` and ``recall50`` (None when the reference has no boxes at all),
    ``n_reference`` (boxes) and ``n_predicted`` (detections, any score).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference frames but {len(predicted)} predicted frames")
    images, annotations, results = [], [], []
    for i, (ref, pred) in enumerate(zip(reference, predicted)):
        images.append({"id": i})
        for box in ref.above(reference_score).boxes:
            x, y, w, h = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score in zip(pred.boxes, pred.scores):
            results.append(
                {"image_id": i, "category_id": 1, "bbox": [float(v) for v in box], "score": float(score)}
            )
    summary: dict[str, float | int | None] = {"n_reference": len(annotations), "n_predicted": len(results)}
    if not annotations:
        return {**summary, "ap50": None, "recall50": None}
    if not results:
        return {**summary, "ap50": 0.0, "recall50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}],
        }
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][
        0, :, 0, 0, -1
    ]  # IoU 0.5, all recall points, person, all areas, 100 dets
    valid = precision[precision > -1]
    recall = float(ev.eval["recall"][0, 0, 0, -1])
    return {**summary, "ap50": float(valid.mean()) if valid.size else 0.0, "recall50": max(recall, 0.0)}
