"""Hop 2, evaluate: pending answers scored into ``evals`` by the offline detector, an LLM judge, ragas or human labels."""
