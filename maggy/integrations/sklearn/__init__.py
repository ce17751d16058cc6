"""scikit-learn's side of :class:`maggy.sklearn.SearchCV`: what runs on the workers
(:mod:`~maggy.integrations.sklearn.worker`). The estimator itself is :mod:`maggy.sklearn`."""
