"""What to try next: the searchspace, the optimizers and the early-stopping policies (no I/O)."""
