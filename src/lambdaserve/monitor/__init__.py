"""Drift monitoring (ships): the drift measures against a manifest's baseline, a window of
captured rows, one monitor run and its report store, the EMF metrics, the HTML report.
Imports `serving`, `shared` and the root."""
