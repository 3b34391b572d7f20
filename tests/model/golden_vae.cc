// Golden checker for vae: filled in by its component's work.
