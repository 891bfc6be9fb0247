"""The operator: the scheduler, the reconcile pass (observe, step, execute, patch status),
and the wiring of caches, leader election, Events and notifications."""
