"""The chat example: ``grestws serve examples.chat.server:app`` and ``python -m examples.chat.client``."""
