"""Running a suite: orchestration, trained models, explainers, executors, training."""
