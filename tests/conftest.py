"""The test tree's root: pytest puts this folder on sys.path, so test files share helper
modules kept here (nettrim_checks) across their folders."""
