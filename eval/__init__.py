"""Evaluation entry points kept from the repository's layout; the code they run is :mod:`swirl.evaluation`."""
