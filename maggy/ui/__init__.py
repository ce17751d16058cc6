"""What a person sees: live progress, plots and the command line."""
