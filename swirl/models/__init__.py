"""Models: the base LLM/VLM, its LoRA adapters, prompts, scoring and samplers."""
