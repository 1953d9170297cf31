"""Training: warm-start SFT and (later) the SWIRL phases."""
