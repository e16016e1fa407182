"""The model and its explanations: weights, compute, CAMs, the analysis of one exam, the Hub."""
