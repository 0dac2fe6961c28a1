"""Map channel names to stain classes (the vocabulary of the stain-aware model)."""

from __future__ import annotations

import re

STAIN_CLASSES = ("generic", "nucleus", "actin", "tubulin", "mitochondria", "membrane", "puncta")

# (pattern, stain); first match wins. Patterns are matched case-insensitively.
_RULES: tuple[tuple[str, str], ...] = (
    (r"hoechst|dapi|draq5|draq7|\bdna\b|nucle|h2b|sytox|propidium|\bpi\b|drq", "nucleus"),
    (r"phalloidin|actin|lifeact|utrophin", "actin"),
    (r"tubulin|microtubul|\bmts?\b|sir-?tub|eb1|eb3", "tubulin"),
    (r"mito|tom20|tomm20|cox4|tmrm|tmre", "mitochondria"),
    (r"membrane|wga|cellmask|\bcm\b|di[io]\b|fm4-64|caax|concanavalin|cona\b|\ber\b", "membrane"),
    (r"lyso|endosom|lamp|vesic|puncta|golgi|peroxi|bead|spot|foci|rab\d", "puncta"),
)

# Dyes named only by fluorophore: guess by the usual emission slot in multi-stain panels.
_DYES: tuple[tuple[str, str], ...] = (
    (r"alexa\s*fluor\s*35\d|alexa\s*35\d|af\s*35\d|\b405\b|\b350\b|blue", "nucleus"),
)


def stain_for_channel(name: str | None) -> str:
    """Stain class for a channel ``name`` ('generic' when nothing matches).

    >>> stain_for_channel("Hoechst 33342")
    'nucleus'
    >>> stain_for_channel("Phalloidin-488")
    'actin'
    >>> stain_for_channel("Alexa Fluor 555")
    'generic'
    """
    if not name:
        return "generic"
    s = str(name).lower()
    for pattern, stain in _RULES:
        if re.search(pattern, s):
            return stain
    for pattern, stain in _DYES:
        if re.search(pattern, s):
            return stain
    return "generic"
