"""Known-bad releases: a release that failed its analysis is not analysed again.

GitOps brings a failed release back easily (image automation picks the tag again, a
revert is reverted, a person re-applies the commit). Analysing it again would expose users
to it a second time for nothing, so the failure is remembered in ``status.knownBad``
(bounded, newest last) and a comeback is refused with an Event and an alert until a person
runs ``canary retry`` or Git moves on.
"""

from __future__ import annotations

from canary.core.actions import AlertKind
from canary.core.tick import Tick
from canary.core.times import iso
from canary.model.canary import Severity
from canary.model.status import KnownBad

KNOWN_BAD_LIMIT = 10  # failed releases remembered in status.knownBad


def remember_bad(t: Tick, reason: str) -> None:
    """Record the failed release (bounded, newest last) so it is not analysed again."""
    target = t.obs.target
    if target is None:
        return
    primary = t.obs.primary
    before = set(t.status.previous_images or (primary.images if primary else ()))
    entry = KnownBad(
        revision=t.status.current_revision,
        images=tuple(i for i in target.images if i not in before),
        template=target.template_hash,
        failed_at=iso(t.obs.now),
        reason=reason[:300],
    )
    kept = [k for k in t.status.known_bad if k.template != entry.template]
    t.set(known_bad=(*kept, entry)[-KNOWN_BAD_LIMIT:])


def known_bad_match(t: Tick) -> KnownBad | None:
    """The known-bad release the target's current revision brings back, if any."""
    target = t.obs.target
    if target is None:
        return None
    images = set(target.images)
    for entry in reversed(t.status.known_bad):
        # Every image the failed run introduced is back (a fix that keeps one of them,
        # a sidecar say, with a new main image is a new release).
        if entry.template == target.template_hash or (entry.images and set(entry.images) <= images):
            return entry
    return None


def refuse_known_bad(t: Tick, known: KnownBad) -> None:
    """Do not analyse a release that already failed: say so, and leave Git to a person.

    Not reverting it again is deliberate: the one who brought it back may be a person
    who wants it analysed (``canary retry``); image automation is kept from the tag by
    the exclusion written after the first revert (docs/gitops.md)."""
    target = t.obs.target
    assert target is not None
    again = set(known.images) if set(known.images) <= set(target.images) else set()
    what = f"image {', '.join(sorted(again))}" if again else "this template"
    why = (
        f"{what} failed its analysis in revision {known.revision or 'unknown'}"
        f" at {known.failed_at}: {known.reason}"
    )
    refused = f"Not analysing {t.target_id}: {why}. Run canary retry to analyse it anyway."
    revision = t.obs.revision.revision if t.obs.revision else ""
    t.set(
        refused=refused,
        last_applied_spec=target.template_hash,
        tracked_configs=dict(target.tracked_configs),
        current_revision=revision or t.status.current_revision,
        message=refused,
    )
    t.event(refused, warning=True)
    in_revision = f" in revision {revision}" if revision else ""
    t.alert(
        AlertKind.KNOWN_BAD,
        Severity.WARN,
        f"Known-bad release not analysed: {why}. Git declares it again{in_revision}; "
        "traffic stays on the primary. Revert it in Git, or run canary retry to "
        "analyse it on purpose.",
    )
