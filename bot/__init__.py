"""subsbot's Telegram layer (python-telegram-bot 22) on top of the ``payments`` core.

``payments`` never imports this package; this package holds no SQL and no money rules.
"""

import os

# Opt in to PTB's coming behaviour: durations such as RetryAfter.retry_after are timedeltas.
# Without it every 429 logs a deprecation warning (and the rate limiter reads retry_after too).
os.environ.setdefault("PTB_TIMEDELTA", "true")
