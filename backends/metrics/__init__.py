"""Metric sources for release gates: the contract and sample model (source.py), direct scrapes
(scrape.py) and Prometheus (prometheus.py)."""
