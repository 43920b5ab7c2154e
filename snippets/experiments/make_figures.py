"""Placeholder until the experiments pipeline lands: creates the figure folder."""
from pathlib import Path

Path(__file__).resolve().parents[2].joinpath("docs/assets/figures").mkdir(parents=True, exist_ok=True)
print("figures: nothing to draw yet")
