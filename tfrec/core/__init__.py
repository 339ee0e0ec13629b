"""Mechanics shared by models, evaluation and serving: ids and lookups, chunked top-k, tf.distribute helpers."""
