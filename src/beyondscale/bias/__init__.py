"""Bias probes: CrowS-Pairs, BBQ and a counterfactual probe set written for this project."""
