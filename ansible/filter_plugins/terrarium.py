"""Small pure filters for the Terrarium playbook (tested by tests/ansible/filters_test.py)."""

import re

MANAGED_BEGIN = "  # BEGIN terrarium-proxy-sync managed entrypoints"
MANAGED_END = "  # END terrarium-proxy-sync managed entrypoints"


def hex_text(text):
    """Hex of the UTF-8 text, the way ufw stores rule comments in user.rules."""
    return str(text).encode("utf-8").hex()


def managed_block(text):
    """The lines between proxy sync's markers in Traefik's static file, verbatim.

    Returns "" when the file or the markers are absent, else the block including its
    final newline, so the template can put it back byte for byte.
    """
    if not text:
        return ""
    pattern = re.compile(
        "^" + re.escape(MANAGED_BEGIN) + r"[ \t]*\n(.*?)^" + re.escape(MANAGED_END) + r"[ \t]*$",
        re.MULTILINE | re.DOTALL,
    )
    match = pattern.search(text)
    return match.group(1) if match else ""


class FilterModule:
    def filters(self):
        return {"terrarium_hex_text": hex_text, "terrarium_managed_block": managed_block}
