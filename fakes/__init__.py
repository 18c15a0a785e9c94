"""Fakes of the outside services, served over real loopback HTTP: the Telegram Bot API
(:mod:`fakes.telegram`) and OKX (:mod:`fakes.okx`).

They ship with the package because ``python -m bot demo`` runs a whole purchase against them
offline; the tests use the same fakes. Standalone: ``python -m fakes.telegram --port 8081``,
``python -m fakes.okx --port 8555``.
"""
