// Golden checker placeholder (registers nothing yet: its cases report as skipped).
