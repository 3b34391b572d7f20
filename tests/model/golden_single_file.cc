// Golden checker for single_file: filled in by its component's work.
