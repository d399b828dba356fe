"""Reads an OpenMetrics exposition on stdin with the Prometheus client's own parser and
prints {"families": [...], "samples": [[name, labels, value], ...]} as JSON; a parse error
exits non-zero with the parser's message."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

families, samples = [], []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append(family.name)
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
json.dump({"families": families, "samples": samples}, sys.stdout)
