"""Renderers: turn runbook events and outcomes into text (stderr/stdout) or JSON lines."""
