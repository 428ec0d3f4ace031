"""After the search: choose on validation, retrain with several seeds, test once, report.

selection (what to retrain) -> candidates (trials and documented baselines alike) -> harness
(train, save, test once) -> metrics; report (from the database) -> render (tables), plots.
baselines holds the documented figures, read from baselines.toml.
"""
