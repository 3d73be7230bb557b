"""Sub-commands of the ``qdr`` CLI (see ``qdr_core.cli``)."""
