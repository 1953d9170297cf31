"""Environment -> Hugging Face dataset builders (``swirl data <env>``)."""
