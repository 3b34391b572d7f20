// Placeholder until the vision models land.
