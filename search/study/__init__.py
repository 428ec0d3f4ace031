"""The search itself: from a resolved config to a stored, pruned Optuna study.

config (StudyConfig, presets) -> session (data, storage, study opened in a safe order) ->
resume (create or resume the study, its records) with strategy (sampler and pruner) ->
stage (header and summary) -> supervisor (local worker processes) -> loop (one worker's
optimize loop) -> objective (one trial) with space (the only suggest_* calls) and progress.
health reads a study's trials and heartbeats for `search.status`; metadata records versions.
"""
