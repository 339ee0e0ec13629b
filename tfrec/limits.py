"""Bounds on an export's shape options (no TensorFlow import: the CLI checks them first)."""

# The most items one request may ask for (the cores' width; answers are rows x max_k).
MAX_K_LIMIT = 10_000
# The most ids a row of recommend_excluding carries (the warmup holds 256 rows of it).
MAX_EXCLUDE_WIDTH = 4096

# The catalogue indexes an export can carry (tfrec.serving.index): every item scored per
# request, or an inverted-file index probing a few partitions.
INDEXES = ("exact", "approx")
