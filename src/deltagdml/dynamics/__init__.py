"""Molecular dynamics of trained models: the runs and their stability checks, collective
variables, free-energy surfaces, rotational MSAD and their figures (the paper's Fig. 8)."""
