"""Notifications: tell people about promotions, rollbacks and waiting gates.

The pure core decides *which* alerts to send (`canary.core.actions.Alert`); this
package decides *where* (routing: per-canary ``alerts[]`` with severity
filters, else the global notifier), *what they read* (rendering, with an
optional per-AlertProvider ``messageTemplate``) and *how* they get there
(queued, paced, retried delivery that never blocks a tick). One module per
provider type lays the message out in that provider's documented format.

The façade below is the public API; the controller needs only:

* `ResolvedProvider.from_secret(provider, secret_data)` to apply a Secret,
* `validate_provider(resolved)` / `validate_template(text)` to report a bad
  AlertProvider at its field path,
* `GlobalNotifierConfig(...)` for the global notifier (filled from `canary.settings`),
* `NotificationDispatcher(resolve, ...)`, which implements `canary.ports.Notifier`,
* `PrometheusNotificationMetrics(registry)` for the counters.
"""

from canary.adapters.notifiers.base import (
    NotifierConfigError,
    OutgoingRequest,
    ResolvedProvider,
    Sender,
)
from canary.adapters.notifiers.delivery import (
    DeliveryOutcome,
    FailureCallback,
    MetricsRecorder,
    NotificationDispatcher,
    PrometheusNotificationMetrics,
    ProviderResolver,
    RetryPolicy,
    SettledCallback,
    idempotency_key,
)
from canary.adapters.notifiers.factory import SENDERS, make_sender, validate_provider
from canary.adapters.notifiers.generic import GENERIC_SCHEMA
from canary.adapters.notifiers.httpio import HttpClients, http_redactor, redact_url
from canary.adapters.notifiers.rendering import (
    TEMPLATE_FIELDS,
    Message,
    NotificationTemplateError,
    RenderContext,
    compile_template,
    render_message,
    validate_template,
)
from canary.adapters.notifiers.routing import (
    GlobalNotifierConfig,
    ProviderRef,
    RouteTarget,
    route,
    wanted_refs,
)

__all__ = [
    "GENERIC_SCHEMA",
    "SENDERS",
    "TEMPLATE_FIELDS",
    "DeliveryOutcome",
    "FailureCallback",
    "GlobalNotifierConfig",
    "HttpClients",
    "Message",
    "MetricsRecorder",
    "NotificationDispatcher",
    "NotificationTemplateError",
    "NotifierConfigError",
    "OutgoingRequest",
    "PrometheusNotificationMetrics",
    "ProviderRef",
    "ProviderResolver",
    "RenderContext",
    "ResolvedProvider",
    "RetryPolicy",
    "RouteTarget",
    "Sender",
    "SettledCallback",
    "compile_template",
    "http_redactor",
    "idempotency_key",
    "make_sender",
    "redact_url",
    "render_message",
    "route",
    "validate_provider",
    "validate_template",
    "wanted_refs",
]
