"""What to try next and which trials are best so far: the searchspace, the optimizers, the
early-stopping policies and the best-trial rule (no I/O)."""
