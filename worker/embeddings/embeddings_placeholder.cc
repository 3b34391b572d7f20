// Placeholder until the embeddings library lands.
