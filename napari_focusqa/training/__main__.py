"""``focusqa-train <config> [--steps N] [--time-budget S] [--out-dir DIR] ...``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Train one model from a config (a JSON path or a name in ``training/configs``)."""
    ap = argparse.ArgumentParser(prog="focusqa-train", description=__doc__)
    ap.add_argument("config", nargs="?", help="config JSON path or name (fqa-levels, fqa-stain, fqa-distance, "
                    "yang-baseline, fqa-levels-procedural, smoke)")
    ap.add_argument("--steps", type=int, help="exact number of steps (overrides the time budget)")
    ap.add_argument("--time-budget", type=float, dest="time_budget_s", help="seconds of training")
    ap.add_argument("--out-dir", dest="out_dir", help="where the .onnx and .json go")
    ap.add_argument("--threads", type=int, help="torch threads")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--sources", help="comma list: procedural,shared")
    ap.add_argument("--id", help="model id (file names)")
    ap.add_argument("--list", action="store_true", help="list the bundled configs and exit")
    a = ap.parse_args(argv)
    from napari_focusqa.training.train import CONFIG_DIR, load_config, run

    if a.list or not a.config:
        for p in sorted(CONFIG_DIR.glob("*.json")):
            print(p.stem)
        return 0 if a.list else 2
    cfg = load_config(a.config, steps=a.steps, time_budget_s=a.time_budget_s, out_dir=a.out_dir,
                      threads=a.threads, seed=a.seed, id=a.id,
                      sources=a.sources.split(",") if a.sources else None)
    cfg.setdefault("id", Path(a.config).stem)

    def log(msg: str) -> None:
        print(msg, flush=True)

    card = run(cfg, log)
    print(json.dumps(card["metrics"]["headline"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
