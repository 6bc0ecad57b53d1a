"""May they: the decision point and its caches, the remote decision point, the DRF
permission and the dashboard page guard."""
