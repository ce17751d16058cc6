"""What maggy keeps about an experiment between runs: the fingerprint that tells whether a re-run
is the same experiment."""
