"""`{% version_panel panel %}`: render one registered version panel with its own context."""

from django import template
from django.template.loader import render_to_string

register = template.Library()


@register.simple_tag(takes_context=True)
def version_panel(context, panel: dict) -> str:
    return render_to_string(panel["template_name"], panel["context"], request=context.get("request"))
