"""MLflow as a tracker: the driver's half (:mod:`.tracker`) and the workers' (:mod:`.worker`).

Nothing is imported here, so that a worker loading its half loads nothing of the driver's.
"""
