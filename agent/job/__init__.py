"""``rill run``: a whole job (a learner and its actors on robots), configured, placed and supervised.

``config`` holds the run config's ``train:`` section and the resolved configuration each worker is
handed as a file (``<run>/workers/NAME.yaml``); ``prepare`` turns a run config into a placed-ready
HAL run spec and writes those files; ``workers`` are the bodies the scheduler starts (``rill worker
FILE``); ``supervise`` runs the job with a live view; ``summary`` reports and plots it afterwards.
"""
