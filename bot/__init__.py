"""subsbot's Telegram layer (python-telegram-bot 22) on top of the ``payments`` core.

``payments`` never imports this package; this package holds no SQL and no money rules.
"""
