"""``{% load cd_flags %}{% ifflag "name" %}...{% else %}...{% endifflag %}``.

The tag reads ``request`` from the context (the ``request`` context processor).
"""

from __future__ import annotations

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.utils.safestring import SafeString

from django_cd import flags

register = template.Library()


class FlagNode(template.Node):
    def __init__(self, name: FilterExpression, on: NodeList, off: NodeList) -> None:
        self.name, self.on, self.off = name, on, off

    def render(self, context: template.Context) -> SafeString:
        name = self.name.resolve(context)
        branch = self.on if flags.is_active(name, context.get("request")) else self.off
        return branch.render(context)


@register.tag
def ifflag(parser: Parser, token: Token) -> FlagNode:
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError(f"{bits[0]} takes one argument: the flag's name.")
    on = parser.parse(("else", "endifflag"))
    token = parser.next_token()
    off = NodeList()
    if token.contents == "else":
        off = parser.parse(("endifflag",))
        parser.delete_first_token()
    return FlagNode(parser.compile_filter(bits[1]), on, off)


@register.simple_tag(takes_context=True)
def flag_active(context: template.Context, name: str) -> bool:
    """``{% flag_active "name" as on %}`` for use in ``{% if %}``."""
    return flags.is_active(name, context.get("request"))
