"""What runs on the executors beside ``train_fn``: the system metrics a worker samples."""
