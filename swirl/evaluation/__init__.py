"""Evaluation: metrics on texts (:mod:`.metrics`), a world model on a split (:mod:`.world_model`), open-loop rollouts
(:mod:`.rollouts`), tables, plots, run comparisons and WAV acquisition summaries."""
