"""Environment -> Hugging Face dataset builders (``swirl data <env>``) and the dataset a run uses (:mod:`.prepare`)."""
