"""The lab and the project's build helpers. `from lab import lab` is the lab driver (lab/lab.py)."""
