// Placeholder until the LoRA library lands.
