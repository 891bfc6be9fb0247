"""The operator: kopf handlers and the reconcile pass (observe, step, execute, patch status)."""
