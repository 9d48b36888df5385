"""How many rows aevb reads, checks, digests or scores at a time.

Data may be a memory-mapped file larger than memory: every pass over its rows
takes them ``CHUNK_ROWS`` at a time, so memory does not grow with the rows
(16384 rows of 64 float64 features are 8 MiB).
"""

CHUNK_ROWS = 16384
