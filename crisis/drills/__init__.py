"""Runbook-driven incidents and drills: checklist, injects, stopping a drill, the report."""
