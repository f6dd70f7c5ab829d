"""API I/O: one client per member cluster, server-side apply, pruning. Nothing else does I/O."""
