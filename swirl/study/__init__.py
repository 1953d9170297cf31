"""The self-improvement study: does SWIRL's use of state-only transitions improve a world model, against the
obvious baselines, over seeds? One module per job: ``config`` (the settings), ``data`` (each seed's datasets),
``arms`` (running every arm), ``noops`` (the no-op test), ``labels`` (how right inferred actions are),
``statistics`` (paired differences, intervals, power), ``report`` (the tables) and ``runner`` (the command)."""
