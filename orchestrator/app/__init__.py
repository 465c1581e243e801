"""The application: epic.yaml, the runner and its schedule, run records, preflight, the plan."""
