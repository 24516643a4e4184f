"""On-demand performance benchmarks for imgdesk (issue 5): ``python -m benchmarks.run``."""
