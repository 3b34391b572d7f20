// Golden checker for text_encoders: filled in by its component's work.
