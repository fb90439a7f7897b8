"""Text side: tokenizers, embeddings, datasets and batching."""
