"""Choose the band decision's default operating point on dev (not a test: a measurement).

For each way of combining the categories' probabilities, each under-rating cost, and with or without the
band calibration (vicas.band.BandCalibration, fitted on the same rows), fit the review threshold on dev for
the policy's targets and report, on the same dev rows, the band as served: exact,
under-rated among automatic decisions, share to review, over-rated. Everything here is fitted and measured on
the same dev rows, which favours the more flexible rule (with the band calibration) a little; the test splits'
comparison is `evaluate`'s (`without_band_calibration` in reports/text_eval_details.json). The default in
`vicas/policies/default.yaml` is chosen from this table (dev only; the test splits are reported by
`dvc repro evaluate`). Writes reports/band_operating_point.json.

    python benchmarks/band_operating_point.py --model models/text --data data/prepared
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training.calibration import band_inputs, fit_band_calibration, fit_review, known_band_rows
from training.metrics import band_decision_metrics, served_bands
from training.text.dataset import load_rows
from vicas.engine import TextEngine
from vicas.inference import severity_probabilities
from vicas.policy import load_policy
from vicas.taxonomy import CATEGORIES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/text"))
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("reports/band_operating_point.json"))
    args = parser.parse_args(argv)
    engine = TextEngine(args.model)
    dev = load_rows(args.data / "dev.jsonl")
    rows = [dev[i] for i in known_band_rows(dev)]
    logits = np.concatenate(
        [
            engine.text_logits(engine.infer([str(r["text"]) for r in rows[s : s + 256]]))[0]
            for s in range(0, len(rows), 256)
        ]
    )
    probs = severity_probabilities(logits, engine.calibration)
    true_sev = [{c: int(r["labels"][c][0]) for c in CATEGORIES} for r in rows]
    base = load_policy()
    table = []
    raw = engine.calibration.model_copy(update={"band_calibration": None})
    for calibrated in (False, True):
        for combine in ("independent", "max"):
            for under in (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0, 10.0, 12.0):
                rule = base.decision.model_copy(update={"combine": combine, "under_cost": under, "over_cost": 1.0})
                policy = base.model_copy(update={"decision": rule})
                cal = fit_band_calibration(probs, true_sev, raw, policy) if calibrated else raw
                cal = fit_review(probs, true_sev, cal, policy)
                at_least, floors, truth = band_inputs(probs, true_sev, cal, policy)
                served, review = served_bands(at_least, floors, policy, cal.review_risk)
                m = band_decision_metrics(served, review, truth)
                table.append(
                    {
                        "band_calibration": calibrated,
                        "combine": combine,
                        "under_cost": under,
                        "review_risk": cal.review_risk,
                        **m,
                    }
                )
                print(json.dumps(table[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": engine.version, "dev_rows": len(rows), "table": table}, indent=1))


if __name__ == "__main__":
    main()
