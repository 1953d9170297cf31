"""swirl: fine-tune LLMs/VLMs into world models with SWIRL and collect action labels with WAV."""

__version__ = "0.1.0"
