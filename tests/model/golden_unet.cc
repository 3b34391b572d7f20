// Golden checker for unet: filled in by its component's work.
