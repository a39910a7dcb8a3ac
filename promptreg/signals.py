"""Signals the registry sends so other apps can react without the registry importing them."""

from django.dispatch import Signal

# Sent after commit whenever what a fetch of this prompt returns may have changed
# (label move, new version, retirement, experiment start/stop). kwargs: prompt_name.
serving_changed = Signal()

# Sent after commit when a label moves. kwargs: move (LabelMove).
label_moved = Signal()

# Sent after commit when a version is submitted for review. kwargs: version.
version_submitted = Signal()

# Sent INSIDE the rollback's transaction, so what a receiver records (an alert) commits or rolls back
# with it. kwargs: move (LabelMove, is_rollback).
rolled_back = Signal()

# Sent INSIDE the transaction of each action that webhooks report, so what it records
# commits or rolls back with the action. kwargs: event ("version.created", "review.decided",
# "label.moved", "experiment.started" / "stopped" / "shipped", "prompt.retired" / "restored"),
# prompt (Prompt), instance (the row the event is about), actor (services.Actor), reason (str).
prompt_event = Signal()
