"""Adapters: one external system per module (Kubernetes, routers, notifiers, webhooks, Git)."""
