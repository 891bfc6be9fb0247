"""Tests of the sandbox API server, its kubectl/kopf compatibility and the workload simulator."""
