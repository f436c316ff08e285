"""Storage under every stage: atomic reads and writes through fsspec (`storage`), the
compare-and-swap of shared small files (`cas`) and the per-date publication markers."""
